import { createHash, randomBytes, webcrypto } from 'node:crypto';
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
  constructor(
    secret: string,
    private readonly opts: { issuer: string; audience: string; ttlSeconds: number; cacheMax?: number; now?: () => number },
  ) {
    this.key = webcrypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    this.now = opts.now ?? Date.now;
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
      const { payload } = await jwtVerify(token, await this.key, {
        algorithms: [ALG],
        issuer: this.opts.issuer,
        audience: this.opts.audience,
        typ: TYP,
        currentDate: new Date(this.now()),
      });
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
