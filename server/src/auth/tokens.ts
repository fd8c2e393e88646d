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
const TYP = 'at+jwt';

/** JWT access tokens with a pinned algorithm, issuer, audience and type. */
export class AccessTokens {
  /**
   * Imported once: given raw bytes, jose imports a WebCrypto key on every call, which was about
   * half the CPU of a verify (each socket upgrade and API call verifies one).
   */
  private key: Promise<webcrypto.CryptoKey>;
  constructor(
    secret: string,
    private readonly opts: { issuer: string; audience: string; ttlSeconds: number },
  ) {
    this.key = webcrypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
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
    try {
      const { payload } = await jwtVerify(token, await this.key, {
        algorithms: [ALG],
        issuer: this.opts.issuer,
        audience: this.opts.audience,
        typ: TYP,
      });
      if (typeof payload.sub !== 'string' || typeof payload.sid !== 'string') throw new Error('claims');
      return { sub: payload.sub, sid: payload.sid };
    } catch (err) {
      const expired = err instanceof joseErrors.JWTExpired;
      throw new DomainError('UNAUTHORIZED', expired ? 'token expired' : 'invalid token');
    }
  }
}

/** Opaque refresh tokens: 256 random bits, stored only as a SHA-256 hash. */
export const newRefreshToken = () => 'rt_' + randomBytes(32).toString('base64url');
export const hashToken = (token: string) => createHash('sha256').update(token).digest('base64url');
