import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AuthService } from '../auth/auth-service.ts';
import { PasswordHasher } from '../auth/passwords.ts';
import { AccessTokens } from '../auth/tokens.ts';
import type { Config } from '../config.ts';
import type { Database } from '../db/database.ts';
import type { UserControl } from '../hub/ports.ts';
import type { RateLimiter } from '../limits/rate-limiter.ts';
import type { Logger } from '../observability/logger.ts';

/** Accounts and sessions: the token signer, the password hasher, and the auth service over them. */
export function buildAuth(
  config: Config,
  d: { database: Database; limiter: RateLimiter; logger: Logger; controlUser(userId: string, msg: UserControl): Promise<void> },
) {
  const { database, logger } = d;
  const secret = jwtSecret(config, logger);
  const tokens = new AccessTokens(secret, {
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    ttlSeconds: config.ACCESS_TOKEN_TTL_S,
  });
  const hasher = new PasswordHasher({
    memoryCost: config.ARGON2_MEMORY_KIB,
    timeCost: config.ARGON2_TIME_COST,
    nice: config.PASSWORD_HASH_NICE,
  });
  const auth = new AuthService({
    db: database.db,
    database,
    hasher,
    tokens,
    limiter: d.limiter,
    logger,
    refreshTtlSeconds: config.REFRESH_TOKEN_TTL_S,
    reuseGraceMs: config.REFRESH_REUSE_GRACE_MS,
    loginLimits: { perAccount: config.LOGIN_MAX_PER_ACCOUNT, perIp: config.LOGIN_MAX_PER_IP, windowMs: config.LOGIN_WINDOW_S * 1000 },
    // Revoked sessions' sockets close on every replica; the revocation itself is stored already.
    onRevoke: (r) => {
      d.controlUser(r.userId, { k: 'revoke', sessions: r.sessionIds }).catch((err) => {
        logger.error({ err: (err as Error).message }, 'session revocation broadcast failed');
      });
    },
  });
  return { auth, tokens, hasher, jwtSecret: secret };
}

/**
 * JWT_SECRET from the environment; in development one is generated once and kept in DATA_DIR
 * (so tokens survive a restart); in tests a random one per process unless given.
 */
function jwtSecret(config: Config, logger: Logger): string {
  if (config.JWT_SECRET) return config.JWT_SECRET;
  if (config.NODE_ENV === 'test') return randomBytes(32).toString('base64url');
  const file = path.resolve(config.DATA_DIR, 'jwt-secret');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    mkdirSync(config.DATA_DIR, { recursive: true });
    const secret = randomBytes(48).toString('base64url');
    writeFileSync(file, secret + '\n', { mode: 0o600 });
    logger.info({ file }, 'generated a development JWT secret');
    return secret;
  }
}
