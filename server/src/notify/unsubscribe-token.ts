import { createHmac, timingSafeEqual } from 'node:crypto';

/** Signed one-click unsubscribe links: `<PUBLIC_URL>/notifications/unsubscribe?u=<user>&s=<sig>`. */
export class UnsubscribeTokens {
  constructor(
    private readonly secret: string,
    private readonly publicUrl: string,
  ) {}

  private sign(userId: string) {
    return createHmac('sha256', this.secret).update(`unsubscribe-email:${userId}`).digest('base64url');
  }

  url(userId: string): string {
    const u = new URL('/notifications/unsubscribe', this.publicUrl);
    u.searchParams.set('u', userId);
    u.searchParams.set('s', this.sign(userId));
    return u.toString();
  }

  verify(userId: string, sig: string): boolean {
    if (!/^[0-9a-f-]{36}$/.test(userId)) return false;
    const want = Buffer.from(this.sign(userId));
    const got = Buffer.from(sig);
    return want.length === got.length && timingSafeEqual(want, got);
  }
}

/** The unsubscribe key: NOTIFY_SECRET, or one derived from the JWT secret. */
export const notifySecret = (configured: string | undefined, jwtSecret: string) =>
  configured ?? createHmac('sha256', jwtSecret).update('hubbub notify unsubscribe').digest('base64url');
