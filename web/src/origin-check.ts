/**
 * Whether the hub accepts sockets from this origin (its ALLOWED_ORIGINS). A browser never sees
 * why an upgrade was refused, so the page asks the hub's origin endpoint after a connect that
 * closed before `ready`.
 */
export async function originAllowed(origin: string): Promise<boolean> {
  const r = await fetch(`/health/origin?origin=${encodeURIComponent(origin)}`, { cache: 'no-store' });
  if (!r.ok) return true; // an older hub without the endpoint: nothing to say
  const body = (await r.json()) as { allowed?: boolean };
  return body.allowed !== false;
}
