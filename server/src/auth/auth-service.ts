import { randomUUID } from 'node:crypto';
import { and, eq, inArray, isNull, or, sql } from 'drizzle-orm';
import type { Database, Db } from '../db/database.ts';
import { authAudit, credentials, profiles, refreshTokens, sessions, users } from '../../../db/schema/index.ts';
import { DomainError, isUniqueViolation } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { PasswordHasher } from './passwords.ts';
import type { RateLimiter } from '../limits/rate-limiter.ts';
import { type AccessTokens, hashToken, newRefreshToken } from './tokens.ts';

export interface RequestMeta {
  ip: string;
  userAgent?: string;
}

export interface AuthedUser {
  id: string;
  sessionId: string;
}

/** Sessions whose sockets must close now: a list, or every session of the user. */
export type SessionRevocation = { userId: string; sessionIds: string[] | 'all'; reason: string };

// Every authenticated call runs this: one prepared statement (no query building per call).
const SESSION_LIVE_SQL = `select s.revoked_at is null and u.deleted_at is null as live
  from sessions s join users u on u.id = s.user_id
  where s.id = $1 and s.user_id = $2`;

export interface AuthServiceDeps {
  db: Db;
  /** Prepared statements for the per-call session check. */
  database: Pick<Database, 'query'>;
  hasher: PasswordHasher;
  tokens: AccessTokens;
  limiter: RateLimiter;
  logger: Logger;
  refreshTtlSeconds: number;
  reuseGraceMs: number;
  loginLimits: { perAccount: number; perIp: number; windowMs: number };
  /** Told whenever sessions are revoked, so the hubs can close those sockets. */
  onRevoke: (r: SessionRevocation) => void;
  now?: () => number;
}

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

const INVALID_LOGIN = 'invalid login or password';

export class AuthService {
  private readonly now: () => number;
  constructor(private readonly d: AuthServiceDeps) {
    this.now = d.now ?? Date.now;
  }

  async register(input: { email: string; username: string; password: string; displayName?: string }, meta: RequestMeta) {
    const ipGate = await this.d.limiter.hit(`reg:ip:${meta.ip}`, this.d.loginLimits.perIp, this.d.loginLimits.windowMs);
    if (!ipGate.allowed) throw new DomainError('RATE_LIMITED', 'too many attempts, try later', ipGate.retryAfterMs);
    const passwordHash = await this.d.hasher.hash(input.password);
    const id = randomUUID();
    try {
      await this.d.db.transaction(async (tx) => {
        await tx.insert(users).values({ id, email: input.email, username: input.username });
        await tx.insert(credentials).values({ userId: id, passwordHash });
        await tx.insert(profiles).values({ userId: id, displayName: input.displayName ?? input.username });
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new DomainError('CONFLICT', 'email or username already taken');
      throw err;
    }
    await this.audit(id, 'register', meta);
    const pair = await this.startSession(id, meta);
    return { userId: id, ...pair };
  }

  async login(input: { login: string; password: string }, meta: RequestMeta) {
    const { perAccount, perIp, windowMs } = this.d.loginLimits;
    const login = input.login.toLowerCase();
    // The account is resolved first, so its throttle is one budget whatever was typed (username
    // or email, any case) and from wherever; a login that names no account is throttled by what
    // was typed. Both paths then verify a hash, so they take the same time and the same error.
    const [row] = await this.d.db
      .select({ id: users.id, hash: credentials.passwordHash })
      .from(users)
      .innerJoin(credentials, eq(credentials.userId, users.id))
      .where(and(isNull(users.deletedAt), or(sql`lower(${users.email}) = ${login}`, sql`lower(${users.username}) = ${login}`)))
      .limit(1);
    const accountKey = row ? `login:acct:${row.id}` : `login:name:${login}`;
    const [ipGate, acctGate] = await Promise.all([
      this.d.limiter.hit(`login:ip:${meta.ip}`, perIp, windowMs),
      this.d.limiter.hit(accountKey, perAccount, windowMs),
    ]);
    if (!ipGate.allowed || !acctGate.allowed) {
      await this.audit(null, 'login_throttled', meta);
      throw new DomainError(
        'RATE_LIMITED',
        'too many attempts, try later',
        Math.max(ipGate.allowed ? 0 : ipGate.retryAfterMs, acctGate.allowed ? 0 : acctGate.retryAfterMs),
      );
    }
    // Verified even when no user matched (against a dummy hash), so both paths take the same time.
    const ok = await this.d.hasher.verify(row?.hash, input.password);
    if (!ok || !row) {
      await this.audit(row?.id ?? null, 'login_failed', meta);
      throw new DomainError('UNAUTHORIZED', INVALID_LOGIN);
    }
    await this.d.limiter.reset(accountKey);
    await this.audit(row.id, 'login', meta);
    const pair = await this.startSession(row.id, meta);
    return { userId: row.id, ...pair };
  }

  /** Rotates a refresh token. Reuse of a spent one outside the grace window revokes its family. */
  async refresh(refreshToken: string, meta: RequestMeta): Promise<TokenPair & { userId: string }> {
    const h = hashToken(refreshToken);
    const now = this.now();
    const [row] = await this.d.db
      .select({
        sessionId: refreshTokens.sessionId,
        expiresAt: refreshTokens.expiresAt,
        usedAt: refreshTokens.usedAt,
        userId: sessions.userId,
        revokedAt: sessions.revokedAt,
      })
      .from(refreshTokens)
      .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
      .where(eq(refreshTokens.tokenHash, h))
      .limit(1);
    if (!row || row.revokedAt || row.expiresAt.getTime() <= now) {
      throw new DomainError('UNAUTHORIZED', 'invalid refresh token');
    }
    // Claim the token atomically: of two concurrent refreshes exactly one wins here.
    const claimed = await this.d.db
      .update(refreshTokens)
      .set({ usedAt: new Date(now) })
      .where(and(eq(refreshTokens.tokenHash, h), isNull(refreshTokens.usedAt)))
      .returning({ h: refreshTokens.tokenHash });
    if (claimed.length === 0) {
      const [again] = await this.d.db.select({ usedAt: refreshTokens.usedAt }).from(refreshTokens).where(eq(refreshTokens.tokenHash, h));
      const usedAt = again?.usedAt?.getTime() ?? 0;
      if (now - usedAt > this.d.reuseGraceMs) {
        await this.revokeSessions(row.userId, [row.sessionId], 'refresh_reuse');
        await this.audit(row.userId, 'refresh_reuse_detected', meta, { sessionId: row.sessionId });
        throw new DomainError('UNAUTHORIZED', 'invalid refresh token');
      }
      // Within the grace window (two tabs refreshing at once): the family gets a sibling token.
    }
    const pair = await this.issue(row.userId, row.sessionId);
    await this.d.db
      .update(sessions)
      .set({ lastUsedAt: new Date(now) })
      .where(eq(sessions.id, row.sessionId));
    return { userId: row.userId, ...pair };
  }

  /** Revokes the session a refresh token belongs to. Unknown tokens are ignored (logout is idempotent). */
  async logout(refreshToken: string, meta: RequestMeta) {
    const [row] = await this.d.db
      .select({ sessionId: refreshTokens.sessionId, userId: sessions.userId })
      .from(refreshTokens)
      .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
      .where(eq(refreshTokens.tokenHash, hashToken(refreshToken)));
    if (!row) return;
    await this.revokeSessions(row.userId, [row.sessionId], 'logout');
    await this.audit(row.userId, 'logout', meta);
  }

  async logoutAll(user: AuthedUser, meta: RequestMeta) {
    await this.revokeSessions(user.id, 'all', 'logout_all');
    await this.audit(user.id, 'logout_all', meta);
  }

  async changePassword(user: AuthedUser, input: { current: string; next: string }, meta: RequestMeta) {
    const [cred] = await this.d.db.select({ hash: credentials.passwordHash }).from(credentials).where(eq(credentials.userId, user.id));
    if (!(await this.d.hasher.verify(cred?.hash, input.current))) {
      await this.audit(user.id, 'change_password_failed', meta);
      throw new DomainError('UNAUTHORIZED', 'current password is wrong');
    }
    const passwordHash = await this.d.hasher.hash(input.next);
    await this.d.db
      .update(credentials)
      .set({ passwordHash, updatedAt: new Date(this.now()) })
      .where(eq(credentials.userId, user.id));
    // Every other device must log in again with the new password.
    const others = await this.d.db
      .select({ id: sessions.id })
      .from(sessions)
      .where(and(eq(sessions.userId, user.id), isNull(sessions.revokedAt), sql`${sessions.id} <> ${user.sessionId}`));
    if (others.length)
      await this.revokeSessions(
        user.id,
        others.map((s) => s.id),
        'password_changed',
      );
    await this.audit(user.id, 'change_password', meta);
  }

  /** Checks an access token and that its session is still live. Throws UNAUTHORIZED. */
  async authenticate(token: string): Promise<AuthedUser> {
    const claims = await this.d.tokens.verify(token);
    const [s] = await this.d.database.query<{ live: boolean }>(SESSION_LIVE_SQL, [claims.sid, claims.sub]);
    if (!s?.live) throw new DomainError('UNAUTHORIZED', 'session ended');
    return { id: claims.sub, sessionId: claims.sid };
  }

  async verifyPassword(userId: string, password: string): Promise<boolean> {
    const [cred] = await this.d.db.select({ hash: credentials.passwordHash }).from(credentials).where(eq(credentials.userId, userId));
    return this.d.hasher.verify(cred?.hash, password);
  }

  async revokeSessions(userId: string, sessionIds: string[] | 'all', reason: string) {
    const at = new Date(this.now());
    const where =
      sessionIds === 'all'
        ? and(eq(sessions.userId, userId), isNull(sessions.revokedAt))
        : and(eq(sessions.userId, userId), isNull(sessions.revokedAt), inArray(sessions.id, sessionIds));
    if (sessionIds !== 'all' && sessionIds.length === 0) return;
    await this.d.db.update(sessions).set({ revokedAt: at, revokedReason: reason }).where(where);
    this.d.onRevoke({ userId, sessionIds, reason });
  }

  async audit(userId: string | null, event: string, meta: RequestMeta, extra: Record<string, unknown> = {}) {
    try {
      await this.d.db.insert(authAudit).values({
        userId,
        event,
        ip: meta.ip,
        meta: meta.userAgent ? { ...extra, ua: meta.userAgent.slice(0, 256) } : extra,
      });
    } catch (err) {
      // The audit trail must not turn a login into a 500; the failure is logged for ops.
      this.d.logger.error({ err, event }, 'audit write failed');
    }
  }

  private async startSession(userId: string, meta: RequestMeta): Promise<TokenPair> {
    const sessionId = randomUUID();
    await this.d.db.insert(sessions).values({ id: sessionId, userId, ip: meta.ip, userAgent: meta.userAgent?.slice(0, 256) });
    return this.issue(userId, sessionId);
  }

  private async issue(userId: string, sessionId: string): Promise<TokenPair> {
    const refreshToken = newRefreshToken();
    await this.d.db.insert(refreshTokens).values({
      tokenHash: hashToken(refreshToken),
      sessionId,
      expiresAt: new Date(this.now() + this.d.refreshTtlSeconds * 1000),
    });
    const accessToken = await this.d.tokens.sign({ sub: userId, sid: sessionId });
    return { accessToken, refreshToken, expiresIn: this.d.tokens.ttlSeconds };
  }
}
