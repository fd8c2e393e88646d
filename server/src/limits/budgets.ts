import type { Config } from '../config.ts';
import { KeyedBuckets } from './keyed-buckets.ts';

/**
 * The work budgets of one replica, in one table: what each socket, user and request may make
 * the hub do. Every budget is a config key (docs/operations.md, "Work budgets"); exceeding one gets
 * `RATE_LIMITED` (tRPC `TOO_MANY_REQUESTS`), or 4008 for a socket that keeps trying, never a
 * stall. The per-socket frame rate, the connection limit and the send-buffer limit (4009) are
 * in the hub's own limits; these are the ones shared across a user's sockets and calls.
 */
export interface WorkBudgets {
  /** Events replayed by `resume`, per user on this replica (every socket of the user draws on it). */
  resumeEvents: KeyedBuckets;
  /** tRPC calls (each call of a batch counts), per authenticated user. */
  apiCalls: KeyedBuckets;
  /** tRPC calls without a session, per client IP. */
  anonCalls: KeyedBuckets;
  /** Rows asked of `conversations.history`, per user. */
  historyRows: KeyedBuckets;
  /** Calls in one tRPC batch (tRPC's `maxBatchSize`: a larger batch is a 400 before any call runs). */
  maxBatchCalls: number;
}

export function workBudgets(c: Config, now?: () => number): WorkBudgets {
  return {
    resumeEvents: new KeyedBuckets(c.WS_RESUME_EVENTS_PER_S, c.WS_RESUME_EVENTS_BURST, now),
    apiCalls: new KeyedBuckets(c.API_RATE_PER_S, c.API_RATE_BURST, now),
    anonCalls: new KeyedBuckets(c.API_ANON_RATE_PER_S, c.API_ANON_RATE_BURST, now),
    historyRows: new KeyedBuckets(c.API_HISTORY_ROWS_PER_S, c.API_HISTORY_ROWS_BURST, now),
    maxBatchCalls: c.API_MAX_BATCH_CALLS,
  };
}
