/** Per-connection rate limit: `ratePerS` tokens a second, up to `burst` saved. */
export class TokenBucket {
  private tokens: number;
  private at: number;
  constructor(
    private readonly ratePerS: number,
    private readonly burst: number,
    now = performance.now(),
  ) {
    this.tokens = burst;
    this.at = now;
  }
  take(now = performance.now()): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.ratePerS);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
