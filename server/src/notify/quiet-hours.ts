/** Quiet hours: `start` to `end` (HH:MM, may wrap past midnight) in an IANA time zone. */
export interface QuietHours {
  start: string;
  end: string;
  timezone: string;
}

export const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;

export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const minutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** Minutes since local midnight at `now` in `tz`. */
function localMinutes(now: Date, tz: string): number {
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(now);
  const h = Number(parts.find((p) => p.type === 'hour')!.value);
  const m = Number(parts.find((p) => p.type === 'minute')!.value);
  return h * 60 + m;
}

/**
 * When quiet hours are on at `now`, the instant they end (to the minute); otherwise null.
 * Computed by stepping over local minutes, so DST changes inside the window are handled.
 */
export function quietUntil(now: Date, q: QuietHours | null): Date | null {
  if (!q || q.start === q.end) return null;
  const s = minutes(q.start);
  const e = minutes(q.end);
  const cur = localMinutes(now, q.timezone);
  const inside = s < e ? cur >= s && cur < e : cur >= s || cur < e;
  if (!inside) return null;
  const wait = (e - cur + 1440) % 1440;
  // Local time may jump at DST: walk forward until the local clock shows the end (at most 2 h off).
  let t = new Date(Math.floor(now.getTime() / 60_000) * 60_000 + wait * 60_000);
  for (let i = 0; i < 180 && localMinutes(t, q.timezone) !== e; i++) t = new Date(t.getTime() + 60_000);
  return t;
}
