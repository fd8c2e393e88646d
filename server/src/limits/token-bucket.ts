/** A rate limit: `ratePerS` tokens a second, up to `burst` saved (per connection, or per key in KeyedBuckets). */
export class TokenBucket {
  private tokens: number;
  private at: number;
  constructor(
    private ratePerS: number,
    private burst: number,
    now = performance.now(),
  ) {
    this.tokens = burst;
    this.at = now;
  }
  /** Takes `cost` tokens if there are that many; otherwise takes nothing and returns false. */
  take(now = performance.now(), cost = 1): boolean {
    this.refill(now);
    if (this.tokens < cost) return false;
    this.tokens -= cost;
    return true;
  }
  /** The tokens there at `now` (refilled, none taken). */
  level(now = performance.now()) {
    this.refill(now);
    return this.tokens;
  }
  /**
   * New limits in place (a plan change): a larger burst is available at once, a smaller one
   * caps what is saved.
   */
  reset(ratePerS: number, burst: number, now = performance.now()) {
    this.refill(now);
    this.tokens = Math.min(burst, this.tokens + Math.max(0, burst - this.burst));
    this.ratePerS = ratePerS;
    this.burst = burst;
  }
  get capacity() {
    return this.burst;
  }
  private refill(now: number) {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.ratePerS);
    this.at = now;
  }
}
