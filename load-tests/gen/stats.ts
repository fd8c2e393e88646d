/**
 * Latency histograms (HdrHistogram, 3 significant digits, 1 µs to 1 h) that each generator
 * process records into and the runner merges, plus the summaries the report reads.
 */
import hdr from 'hdr-histogram-js';

export type Histogram = ReturnType<typeof hdr.build>;

export function newHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
}

/** Records a duration in milliseconds (as whole microseconds; negatives, from clock skew, as 1 µs). */
export function recordMs(h: Histogram, ms: number): void {
  const us = Math.round(ms * 1000);
  h.recordValue(us < 1 ? 1 : us > 3_600_000_000 ? 3_600_000_000 : us);
}

export const encodeHistogram = (h: Histogram): string => hdr.encodeIntoCompressedBase64(h);
export const decodeHistogram = (s: string): Histogram => hdr.decodeFromCompressedBase64(s) as Histogram;

export interface HistSummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
}

const ms = (us: number) => Math.round(us) / 1000;

/** count, mean and percentiles in milliseconds (NaN when empty). */
export function summarize(h: Histogram): HistSummary {
  const n = h.totalCount;
  if (!n) return { count: 0, mean: NaN, p50: NaN, p90: NaN, p95: NaN, p99: NaN, p999: NaN, max: NaN };
  const at = (p: number) => ms(h.getValueAtPercentile(p));
  return { count: n, mean: ms(h.mean), p50: at(50), p90: at(90), p95: at(95), p99: at(99), p999: at(99.9), max: ms(h.maxValue) };
}

/** Percentile → ms points for a latency-distribution chart (x as percentile, log-spaced towards 100). */
export function distribution(h: Histogram): { p: number; ms: number }[] {
  if (!h.totalCount) return [];
  const ps = [0, 10, 25, 50, 75, 90, 95, 97, 98, 99, 99.5, 99.7, 99.8, 99.9, 99.95, 99.97, 99.99, 100];
  return ps.map((p) => ({ p, ms: ms(p === 100 ? h.maxValue : h.getValueAtPercentile(p === 0 ? 0.0001 : p)) }));
}
