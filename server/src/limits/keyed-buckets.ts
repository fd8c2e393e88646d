import { DomainError } from '../errors.ts';
import { TokenBucket } from './token-bucket.ts';

/**
 * Token buckets by key (a user id, an IP), created on first use and forgotten once full again,
 * so memory follows the callers active in the last few seconds. A cost can be more than one
 * token (events replayed, rows read): the work a call triggers is what it pays for.
 */
export class KeyedBuckets {
  private buckets = new Map<string, TokenBucket>();
  private sweptAt: number;

  constructor(
    readonly ratePerS: number,
    readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.sweptAt = now();
  }

  /** Takes `cost` tokens if there are that many; otherwise takes nothing and returns false. */
  take(key: string, cost = 1): boolean {
    const t = this.now();
    if (t - this.sweptAt > 10_000) this.sweep(t);
    let b = this.buckets.get(key);
    if (!b) this.buckets.set(key, (b = new TokenBucket(this.ratePerS, this.burst, t)));
    return b.take(t, cost);
  }

  /** `take`, or a `RATE_LIMITED` DomainError carrying when to retry. */
  spend(key: string, cost: number, message: string) {
    if (!this.take(key, cost)) throw new DomainError('RATE_LIMITED', message, this.retryAfterMs(key, cost));
  }

  /** How long until `cost` tokens are there (ms), for a Retry-After hint. */
  retryAfterMs(key: string, cost = 1): number {
    const b = this.buckets.get(key);
    if (!b) return 0;
    const have = b.level(this.now());
    return Math.max(0, Math.ceil(((Math.min(cost, this.burst) - have) / this.ratePerS) * 1000));
  }

  get size() {
    return this.buckets.size;
  }

  private sweep(t: number) {
    this.sweptAt = t;
    for (const [k, b] of this.buckets) if (b.level(t) >= this.burst) this.buckets.delete(k);
  }
}
