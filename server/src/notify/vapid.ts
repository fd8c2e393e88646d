import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../observability/logger.ts';

export interface VapidKeys {
  publicKey: string;
  privateKey: string;
  subject: string;
}

/**
 * VAPID keys from the configuration; in development generated once into DATA_DIR (so browser
 * subscriptions survive restarts), in tests once per process. Null in production without keys:
 * push is then off.
 */
export function vapidKeys(
  c: { VAPID_PUBLIC_KEY?: string; VAPID_PRIVATE_KEY?: string; VAPID_SUBJECT: string; NODE_ENV: string; DATA_DIR: string },
  logger: Logger,
): VapidKeys | null {
  if (c.VAPID_PUBLIC_KEY && c.VAPID_PRIVATE_KEY)
    return { publicKey: c.VAPID_PUBLIC_KEY, privateKey: c.VAPID_PRIVATE_KEY, subject: c.VAPID_SUBJECT };
  if (c.NODE_ENV === 'production') {
    logger.warn('VAPID_PUBLIC_KEY / VAPID_PRIVATE_KEY are not set: Web Push is off');
    return null;
  }
  // Tests get a key pair per process unless they pass one, as with the JWT secret.
  if (c.NODE_ENV === 'test') return { ...generateVapidKeys(), subject: c.VAPID_SUBJECT };
  const file = path.resolve(c.DATA_DIR, 'vapid.json');
  try {
    const k = JSON.parse(readFileSync(file, 'utf8')) as { publicKey: string; privateKey: string };
    return { ...k, subject: c.VAPID_SUBJECT };
  } catch {
    const k = generateVapidKeys();
    mkdirSync(c.DATA_DIR, { recursive: true });
    writeFileSync(file, JSON.stringify(k) + '\n', { mode: 0o600 });
    logger.info({ file }, 'generated development VAPID keys');
    return { ...k, subject: c.VAPID_SUBJECT };
  }
}

/**
 * A P-256 key pair in web-push's `generateVAPIDKeys()` format (base64url of the uncompressed
 * public point and of the 32-byte private scalar), made with node:crypto so that starting a hub
 * does not load web-push (which is loaded with the first push).
 */
export function generateVapidKeys(): { publicKey: string; privateKey: string } {
  const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  const b = (s: string | undefined) => Buffer.from(s!, 'base64url');
  return {
    publicKey: Buffer.concat([Buffer.from([4]), b(jwk.x), b(jwk.y)]).toString('base64url'),
    privateKey: b(jwk.d).toString('base64url'),
  };
}
