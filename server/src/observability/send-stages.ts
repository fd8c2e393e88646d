import { PerformanceObserver, performance } from 'node:perf_hooks';
import client from 'prom-client';

/**
 * Where the time of a send goes, stage by stage, on the hot path:
 *   append   the write accepted (the `send` frame handled) → its append committed;
 *   publish  committed → PUBLISH issued (the local fanout runs in between);
 *   bus      PUBLISH issued → heard on a replica (every replica, the publisher's included);
 *   write    the event reached its feed (committed here, or heard) → its frame written to the sockets;
 *   total    the write accepted → its frame written to the sockets, on every replica.
 * Exported as one Prometheus histogram, `hubbub_send_stage_seconds{stage}`.
 *
 * Timestamps are wall-clock milliseconds with sub-millisecond resolution (`now()`), so that one
 * taken on one replica can be compared on another: the bus stage crosses processes (and hosts,
 * where it is as good as their clock sync). Observing costs no allocation: counts live in one
 * Float64Array, read only when scraped; prom-client's own histograms hash their labels on every
 * observation.
 */
export const STAGES = ['append', 'publish', 'bus', 'write', 'total'] as const;
export type Stage = (typeof STAGES)[number];
const [APPEND, PUBLISH, BUS, WRITE, TOTAL] = [0, 1, 2, 3, 4];

/** Upper bounds in seconds: 25 µs to ~2.6 s in steps of about 1.33x, fine enough for p99.9 from the buckets. */
export const STAGE_BOUNDS: readonly number[] = Array.from({ length: 41 }, (_, i) => Number((25e-6 * 4 ** (i / 5)).toPrecision(3)));

const ORIGIN = performance.timeOrigin;
/** Wall-clock ms with sub-ms resolution (the origin is the wall clock at start; from there the monotonic clock runs). */
export const now = (): number => ORIGIN + performance.now();

export class SendStages {
  /** Per stage: a count per bound, then one for +Inf; sums in seconds apart. */
  private readonly counts = new Float64Array(STAGES.length * (STAGE_BOUNDS.length + 1));
  private readonly sums = new Float64Array(STAGES.length);
  /** Events handed to sockets this turn, written out at the outbox flush: when each reached its feed, and was accepted. */
  private reached = new Float64Array(256);
  private accepted = new Float64Array(256);
  private pending = 0;

  private observe(stage: number, ms: number) {
    // A clock step backwards (another replica's clock) counts as 0, not as a negative.
    const s = ms > 0 ? ms / 1000 : 0;
    let i = 0;
    while (i < STAGE_BOUNDS.length && s > STAGE_BOUNDS[i]!) i++;
    this.counts[stage * (STAGE_BOUNDS.length + 1) + i]!++;
    this.sums[stage]! += s;
  }

  /** The append of a write accepted at `acceptedAt` committed at `committedAt`. */
  committed(acceptedAt: number, committedAt: number) {
    this.observe(APPEND, committedAt - acceptedAt);
  }

  /** The PUBLISH of an event committed at `committedAt` is being issued at `at`. */
  published(committedAt: number, at: number) {
    this.observe(PUBLISH, at - committedAt);
  }

  /** A bus event published at `publishedAt` was heard here at `heardAt`. */
  heard(publishedAt: number, heardAt: number) {
    this.observe(BUS, heardAt - publishedAt);
  }

  /** An event that reached its feed at `reachedAt` was posted to at least one socket; timed at `flushed`. */
  posted(reachedAt: number, acceptedAt: number) {
    if (this.pending === this.reached.length) {
      const [r, a] = [new Float64Array(this.pending * 2), new Float64Array(this.pending * 2)];
      r.set(this.reached);
      a.set(this.accepted);
      [this.reached, this.accepted] = [r, a];
    }
    this.reached[this.pending] = reachedAt;
    this.accepted[this.pending++] = acceptedAt;
  }

  /** The outbox was written to the sockets at `at`: every event posted since the last flush is timed. */
  flushed(at: number) {
    for (let i = 0; i < this.pending; i++) {
      this.observe(WRITE, at - this.reached[i]!);
      this.observe(TOTAL, at - this.accepted[i]!);
    }
    this.pending = 0;
  }

  /** Registers `hubbub_send_stage_seconds` on the registry (values read at scrape time). */
  register(registry: client.Registry) {
    const name = 'hubbub_send_stage_seconds';
    registry.registerMetric({
      name,
      help: 'Time of each stage of a send on the hot path: append, publish, bus, write, total (see send-stages.ts)',
      type: 'histogram',
      aggregator: 'sum',
      get: async () => ({
        name,
        help: 'Time of each stage of a send on the hot path',
        type: 'histogram',
        aggregator: 'sum',
        values: STAGES.flatMap((stage, k) => {
          const base = k * (STAGE_BOUNDS.length + 1);
          let cum = 0;
          const buckets = STAGE_BOUNDS.map((le, i) => ({
            metricName: `${name}_bucket`,
            labels: { stage, le },
            value: (cum += this.counts[base + i]!),
          }));
          cum += this.counts[base + STAGE_BOUNDS.length]!;
          return [
            ...buckets,
            { metricName: `${name}_bucket`, labels: { stage, le: '+Inf' }, value: cum },
            { metricName: `${name}_sum`, labels: { stage }, value: this.sums[k]! },
            { metricName: `${name}_count`, labels: { stage }, value: cum },
          ];
        }),
      }),
    } as unknown as client.Metric);
  }
}

/**
 * GC pauses, finer than prom-client's `nodejs_gc_duration_seconds` (whose first bucket is 1 ms):
 * the tail of a send is measured in milliseconds. Returns a stop function.
 */
export function observeGcPauses(registry: client.Registry): () => void {
  const pauses = new client.Histogram({
    name: 'hubbub_gc_pause_seconds',
    help: 'Garbage-collection pauses of the main thread, by kind',
    labelNames: ['kind'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [registry],
  });
  const kinds: Record<number, string> = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' };
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = kinds[(e as { detail?: { kind?: number } }).detail?.kind ?? 0] ?? 'other';
      pauses.observe({ kind }, e.duration / 1000);
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  return () => obs.disconnect();
}
