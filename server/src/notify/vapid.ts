import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import webPush from 'web-push';
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
export function vapidKeys(c: { VAPID_PUBLIC_KEY?: string; VAPID_PRIVATE_KEY?: string; VAPID_SUBJECT: string; NODE_ENV: string; DATA_DIR: string }, logger: Logger): VapidKeys | null {
  if (c.VAPID_PUBLIC_KEY && c.VAPID_PRIVATE_KEY) return { publicKey: c.VAPID_PUBLIC_KEY, privateKey: c.VAPID_PRIVATE_KEY, subject: c.VAPID_SUBJECT };
  if (c.NODE_ENV === 'production') {
    logger.warn('VAPID_PUBLIC_KEY / VAPID_PRIVATE_KEY are not set: Web Push is off');
    return null;
  }
  // Tests get a key pair per process unless they pass one, as with the JWT secret.
  if (c.NODE_ENV === 'test') return { ...webPush.generateVAPIDKeys(), subject: c.VAPID_SUBJECT };
  const file = path.resolve(c.DATA_DIR, 'vapid.json');
  try {
    const k = JSON.parse(readFileSync(file, 'utf8')) as { publicKey: string; privateKey: string };
    return { ...k, subject: c.VAPID_SUBJECT };
  } catch {
    const k = webPush.generateVAPIDKeys();
    mkdirSync(c.DATA_DIR, { recursive: true });
    writeFileSync(file, JSON.stringify(k) + '\n', { mode: 0o600 });
    logger.info({ file }, 'generated development VAPID keys');
    return { ...k, subject: c.VAPID_SUBJECT };
  }
}
