/**
 * A circuit breaker per notification endpoint (a push subscription or a webhook, by id): after
 * `failures` failures in a row the endpoint is paused for `cooldownMs`; then one send at a
 * time probes it (half-open): a success closes the breaker, a failure pauses it again for
 * twice as long (up to `maxCooldownMs`). While paused, its sends wait without a request, so a
 * dead receiver costs a worker nothing. State lives in Redis with BullMQ
 * (`endpoint-breaker.redis.ts`, shared by every worker and read by the hubs), in memory
 * in-process (`endpoint-breaker.memory.ts`).
 */
export interface EndpointBreaker {
  /** May a send to this endpoint go now? If not, the instant to try again. */
  admit(target: string): Promise<{ ok: true } | { ok: false; until: number }>;
  /** The endpoint answered (2xx, or a 4xx: it is alive); the breaker closes. */
  success(target: string): Promise<void>;
  /** A timeout, a refused connection, 429 or 5xx. `until` is set when this failure paused it. */
  failure(target: string): Promise<{ until?: number }>;
  /** The endpoints among these that are paused now, with the end of their pause. */
  pausedUntil(targets: string[]): Promise<Map<string, number>>;
}

export interface BreakerOptions {
  failures: number;
  cooldownMs: number;
  maxCooldownMs: number;
  /** How long a half-open probe holds the endpoint before another send may probe (the send timeout and a margin). */
  probeMs: number;
}

/** The pause after the `trips`-th opening in a row: doubling from cooldownMs, capped. */
export const pauseMs = (o: BreakerOptions, trips: number) => Math.min(o.cooldownMs * 2 ** Math.max(0, trips - 1), o.maxCooldownMs);
