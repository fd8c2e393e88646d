import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * What a hub-served file URL allows: `put` the bytes of one pending attachment (at most `n`
 * bytes), or `get` its file or thumbnail. Short-lived, bound to the user it was made for; the
 * hub checks membership again on every use, so a link outliving a removal opens nothing.
 */
export type LinkClaims =
  | { k: 'put'; a: string; u: string; e: number; n: number }
  | { k: 'get'; a: string; u: string; e: number; v: 'file' | 'thumb' };

/** HMAC-SHA256 signed link tokens: `<base64url JSON claims>.<base64url signature>`. */
export class LinkTokens {
  private readonly key: Buffer;

  constructor(
    secret: string,
    private readonly now: () => number = Date.now,
  ) {
    this.key = createHmac('sha256', secret).update('hubbub attachment links').digest();
  }

  sign(claims: LinkClaims): string {
    const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return `${body}.${this.mac(body)}`;
  }

  /** The claims of a valid, unexpired token for this attachment, or null. */
  verify(token: string, attachmentId: string): LinkClaims | null {
    const dot = token.indexOf('.');
    if (dot < 1 || token.length > 2048) return null;
    const body = token.slice(0, dot);
    const want = Buffer.from(this.mac(body));
    const got = Buffer.from(token.slice(dot + 1));
    if (want.length !== got.length || !timingSafeEqual(want, got)) return null;
    let claims: LinkClaims;
    try {
      claims = JSON.parse(Buffer.from(body, 'base64url').toString()) as LinkClaims;
    } catch {
      return null; // signed by us, so never malformed; refusing is right either way
    }
    if (claims.a !== attachmentId || !(claims.e * 1000 > this.now())) return null;
    return claims;
  }

  private mac(body: string) {
    return createHmac('sha256', this.key).update(body).digest('base64url');
  }
}
