import { createHash, createHmac, randomBytes, timingSafeEqual, webcrypto } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { DomainError } from '../errors.ts';

export interface AccessClaims {
  /** user id */
  sub: string;
  /** session (refresh-token family) id */
  sid: string;
}

const ALG = 'HS256';
// Our tokens carry uuids: a well-signed token with another id is refused here, before any query
// (PostgreSQL would reject the parameter, as an error rather than a 401).
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TYP = 'at+jwt';
/** The protected header `sign` writes, base64url, exactly as it appears in our tokens. */
const HEADER = Buffer.from(JSON.stringify({ alg: ALG, typ: TYP })).toString('base64url');

/**
 * The common case without WebCrypto: a token with exactly our header (HS256, at+jwt, nothing
 * else), a signature that is the canonical base64url of its HMAC-SHA256 (compared in constant
 * time), and claims that pass the checks jose makes with our options (iss, aud, exp, nbf, iat
 * types). Anything else, valid or not, returns null and goes through jose, which decides and
 * names the error; so this path can only accept what jose accepts (tokens.test.ts checks that
 * on generated tokens). A WebCrypto verify hops to the thread pool and back, several times the
 * CPU of a synchronous HMAC, on every upgrade of a token not cached yet (a connect storm).
 */
export function fastVerify(
  token: string,
  secret: Buffer,
  opts: { issuer: string; audience: string },
  nowMs: number,
): Record<string, unknown> | null {
  const a = token.indexOf('.');
  const b = token.indexOf('.', a + 1);
  if (a < 0 || b < 0 || token.indexOf('.', b + 1) >= 0 || token.slice(0, a) !== HEADER) return null;
  const sig = token.slice(b + 1);
  const want = createHmac('sha256', secret).update(token.slice(0, b)).digest('base64url');
  if (sig.length !== want.length || !timingSafeEqual(Buffer.from(sig), Buffer.from(want))) return null;
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(token.slice(a + 1, b), 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return null;
  const p = payload as Record<string, unknown>;
  const now = Math.floor(nowMs / 1000);
  if (p.iss !== opts.issuer) return null;
  if (!(p.aud === opts.audience || (Array.isArray(p.aud) && p.aud.includes(opts.audience)))) return null;
  if (typeof p.exp !== 'number' || p.exp <= now) return null;
  if (p.nbf !== undefined && (typeof p.nbf !== 'number' || p.nbf > now)) return null;
  if (p.iat !== undefined && typeof p.iat !== 'number') return null;
  return p;
}

/** JWT access tokens with a pinned algorithm, issuer, audience and type. */
export class AccessTokens {
  /**
   * Imported once: given raw bytes, jose imports a WebCrypto key on every call, which was about
   * half the CPU of a verify (each socket upgrade and API call verifies one).
   */
  private key: Promise<webcrypto.CryptoKey>;
  /**
   * Tokens already verified, by their exact text (signature included), with their expiry: a
   * client presents the same access token on every call and every reconnect for its lifetime,
   * and a WebCrypto HMAC verify costs more than the session query behind it. Insertion order is
   * the eviction order. Revocation is not affected: it is the session check, done every time.
   */
  private verified = new Map<string, { claims: AccessClaims; exp: number }>();
  private readonly now: () => number;
  private readonly secret: Buffer;
  constructor(
    secret: string,
    private readonly opts: { issuer: string; audience: string; ttlSeconds: number; cacheMax?: number; now?: () => number },
  ) {
    this.key = webcrypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [
      'sign',
      'verify',
    ]);
    this.now = opts.now ?? Date.now;
    this.secret = Buffer.from(secret);
  }

  /** Tokens in the verified cache (bounded by cacheMax). */
  get cachedCount() {
    return this.verified.size;
  }

  get ttlSeconds() {
    return this.opts.ttlSeconds;
  }

  async sign(claims: AccessClaims): Promise<string> {
    return new SignJWT({ sid: claims.sid })
      .setProtectedHeader({ alg: ALG, typ: TYP })
      .setSubject(claims.sub)
      .setIssuer(this.opts.issuer)
      .setAudience(this.opts.audience)
      .setIssuedAt()
      .setExpirationTime(`${this.opts.ttlSeconds}s`)
      .sign(await this.key);
  }

  /** Throws DomainError UNAUTHORIZED for anything but a valid, unexpired token of ours. */
  async verify(token: string): Promise<AccessClaims> {
    if (typeof token !== 'string' || token.length > 4096) throw new DomainError('UNAUTHORIZED', 'invalid token');
    const hit = this.verified.get(token);
    if (hit) {
      if (this.now() < hit.exp * 1000) return hit.claims;
      this.verified.delete(token);
      throw new DomainError('UNAUTHORIZED', 'token expired');
    }
    try {
      const payload =
        fastVerify(token, this.secret, this.opts, this.now()) ??
        (
          await jwtVerify(token, await this.key, {
            algorithms: [ALG],
            issuer: this.opts.issuer,
            audience: this.opts.audience,
            typ: TYP,
            currentDate: new Date(this.now()),
          })
        ).payload;
      if (typeof payload.sub !== 'string' || typeof payload.sid !== 'string' || typeof payload.exp !== 'number') throw new Error('claims');
      if (!UUID.test(payload.sub) || !UUID.test(payload.sid)) throw new Error('claims');
      const claims = { sub: payload.sub, sid: payload.sid };
      const max = this.opts.cacheMax ?? 8192;
      if (max > 0) {
        if (this.verified.size >= max) this.verified.delete(this.verified.keys().next().value!);
        this.verified.set(token, { claims, exp: payload.exp });
      }
      return claims;
    } catch (err) {
      const expired = err instanceof joseErrors.JWTExpired;
      throw new DomainError('UNAUTHORIZED', expired ? 'token expired' : 'invalid token');
    }
  }
}

/** Opaque refresh tokens: 256 random bits, stored only as a SHA-256 hash. */
export const newRefreshToken = () => 'rt_' + randomBytes(32).toString('base64url');
export const hashToken = (token: string) => createHash('sha256').update(token).digest('base64url');
