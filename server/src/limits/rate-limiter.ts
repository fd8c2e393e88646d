/**
 * Fixed-window counters keyed by string, for login throttling (per account and per IP).
 * In memory for one replica; Redis when REDIS_URL is set so replicas share the counts.
 */
export interface RateLimiter {
  /** Counts one hit; returns whether it is within `limit` for the current window and when it resets. */
  hit(key: string, limit: number, windowMs: number): Promise<{ allowed: boolean; retryAfterMs: number }>;
  /** Forgets a key (after a successful login, the account's failures are cleared). */
  reset(key: string): Promise<void>;
}
