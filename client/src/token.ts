/**
 * The `exp` of a JWT access token in ms since the epoch, or null when the token does not carry
 * one that can be read (the signature is the hub's business; this only avoids a connect that is
 * bound to be refused).
 */
export function tokenExpiry(jwt: string): number | null {
  const part = jwt.split('.')[1];
  if (!part) return null;
  try {
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp * 1000 : null;
  } catch {
    return null; // not a JWT we can read: let the hub judge it
  }
}

/** True when the token's `exp` is past, or within `skewMs` of now. */
export function tokenExpired(jwt: string, skewMs = 5_000, now = Date.now()): boolean {
  const exp = tokenExpiry(jwt);
  return exp !== null && exp - skewMs <= now;
}
