/**
 * A user's share of the send workers: at most `cap` sends of one user in flight at once per
 * channel, across every worker, so an account with many slow endpoints holds a few of a
 * worker's slots and everyone else's sends find the rest free. A send over the cap waits
 * (its job is delayed a moment) instead of taking a slot. Open-source BullMQ has no per-group
 * concurrency, so the count lives beside it: a sorted set of leases in Redis
 * (`user-share.redis.ts`), a map in-process (`user-share.memory.ts`). A lease ends with its send,
 * or after `leaseMs` if its worker died holding it.
 */
export interface UserShare {
  /** Takes one of the key's `cap` slots for `holder` (a job id); false when all are taken. Idempotent per holder. */
  acquire(key: string, holder: string, cap: number, leaseMs: number): Promise<boolean>;
  release(key: string, holder: string): Promise<void>;
}
