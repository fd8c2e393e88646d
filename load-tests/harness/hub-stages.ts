/**
 * The hubs' own account of a send's time (server/src/observability/send-stages.ts): every hub's `/metrics` is scraped at
 * the measured window's edges, the histograms' differences summed over the hubs, and each stage summarised at p50, p99
 * and p99.9 (interpolated within a bucket), with GC pauses and event-loop delay beside them. The full scrape at the
 * window's start also resets prom-client's event-loop delay gauges, so those read at its end cover the window.
 */
import { round } from './procs.ts';
import { hubMetrics, type ServerSet } from './servers.ts';

const STAGES = ['append', 'publish', 'bus', 'write', 'total'] as const;

/** Cumulative bucket counts of one histogram in metrics text, summed over label sets that pass `keep`. */
function buckets(text: string, name: string, keep: (labels: string) => boolean): Map<number, number> {
  const out = new Map<number, number>();
  const re = new RegExp(`^${name}_bucket\\{([^}]*)\\} (\\S+)$`, 'gm');
  for (const m of text.matchAll(re)) {
    const le = /le="([^"]+)"/.exec(m[1]!)?.[1];
    if (!le || !keep(m[1]!)) continue;
    const bound = le === '+Inf' ? Infinity : Number(le);
    out.set(bound, (out.get(bound) ?? 0) + Number(m[2]));
  }
  return out;
}

const minus = (a: Map<number, number>, b: Map<number, number>) => new Map([...a].map(([k, v]) => [k, v - (b.get(k) ?? 0)]));
const plus = (a: Map<number, number>, b: Map<number, number>) => {
  const out = new Map(a);
  for (const [k, v] of b) out.set(k, (out.get(k) ?? 0) + v);
  return out;
};

/** The q-quantile of cumulative buckets in milliseconds, linear within its bucket; null when empty. */
export function quantileMs(cum: Map<number, number>, q: number): number | null {
  const rows = [...cum].sort((x, y) => x[0] - y[0]);
  const total = rows.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let [lo, below] = [0, 0];
  for (const [bound, c] of rows) {
    if (c >= rank) {
      if (bound === Infinity) return round(lo * 1000, 3);
      const inBucket = c - below;
      return round((lo + (inBucket > 0 ? ((rank - below) / inBucket) * (bound - lo) : 0)) * 1000, 3);
    }
    [lo, below] = [bound, c];
  }
  return null;
}

const gauge = (text: string, name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

/** Scrapes `set`'s hubs at the window's edges (`window(at, s)`); `figures()` once the drive is over. */
export function hubStages(set: ServerSet) {
  const scrape = () => Promise.all(set.procs.map((p) => hubMetrics(p).catch(() => '')));
  let before: Promise<string[]> | null = null;
  let after: Promise<string[]> | null = null;
  const timers: NodeJS.Timeout[] = [];
  return {
    window(at: number, s: number) {
      timers.push(setTimeout(() => (before = scrape()), Math.max(0, at - Date.now())));
      timers.push(setTimeout(() => (after = scrape()), Math.max(0, at + s * 1000 - Date.now())));
    },
    async figures(): Promise<Record<string, number | null>> {
      timers.forEach(clearTimeout);
      const [a, b] = [await (before ?? scrape()), await (after ?? scrape())];
      const out: Record<string, number | null> = {};
      const sum = (name: string, keep: (l: string) => boolean) =>
        a.reduce((acc, _, i) => plus(acc, minus(buckets(b[i]!, name, keep), buckets(a[i]!, name, keep))), new Map<number, number>());
      for (const stage of STAGES) {
        const cum = sum('hubbub_send_stage_seconds', (l) => l.includes(`stage="${stage}"`));
        const key = `stage${stage[0]!.toUpperCase()}${stage.slice(1)}`;
        out[`${key}P50`] = quantileMs(cum, 0.5);
        out[`${key}P99`] = quantileMs(cum, 0.99);
        out[`${key}P999`] = quantileMs(cum, 0.999);
        out[`${key}Count`] = Math.max(0, ...cum.values());
      }
      const gc = sum('hubbub_gc_pause_seconds', () => true);
      out.gcPauses = Math.max(0, ...gc.values());
      out.gcPauseP99Ms = quantileMs(gc, 0.99);
      out.gcPauseMaxMs = quantileMs(gc, 1);
      const gcSum = (t: string[]) =>
        t.reduce(
          (acc, x) => acc + [...x.matchAll(/^hubbub_gc_pause_seconds_sum\{[^}]*\} (\S+)$/gm)].reduce((y, m) => y + Number(m[1]), 0),
          0,
        );
      out.gcPauseTotalMs = round((gcSum(b) - gcSum(a)) * 1000, 1);
      // Group commit: events per message-store write (one statement and commit on PostgreSQL).
      const total = (t: string[], part: 'sum' | 'count') =>
        t.reduce((acc, x) => acc + (gauge(x, `hubbub_append_write_drafts_${part}`) || 0), 0);
      const writes = total(b, 'count') - total(a, 'count');
      out.appendWrites = writes;
      out.draftsPerWrite = writes > 0 ? round((total(b, 'sum') - total(a, 'sum')) / writes, 2) : null;
      // Event-loop delay over the window (prom-client's monitorEventLoopDelay, reset by the scrape at its start): the worst hub.
      out.eldP99Ms = round(Math.max(...b.map((t) => gauge(t, 'hubbub_nodejs_eventloop_lag_p99_seconds'))) * 1000, 2);
      out.eldMaxMs = round(Math.max(...b.map((t) => gauge(t, 'hubbub_nodejs_eventloop_lag_max_seconds'))) * 1000, 2);
      return out;
    },
  };
}
