/** Per-connection rate limit: `ratePerS` tokens a second, up to `burst` saved. */
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
  take(now = performance.now()): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
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
