import { z } from 'zod';
import type { RepeatingJob } from '../jobs/repeating-job.ts';

export const renewalsQueue = 'payments-renewals';
/**
 * Nothing to say: each run takes the due subscriptions in batches of its own. Not strict, so a
 * job scheduled by an older version (with a `batch` field) still parses.
 */
export const renewalPayload = z.object({});

/** What the renewal job needs from the payments domain (PaymentsService). */
export interface Renewer {
  runRenewals(now?: number): Promise<{ renewed: number; downgraded: number }>;
}

/**
 * Renewals as a repeating job: each run charges the subscriptions whose period has ended or
 * downgrades them to free (idempotent per period, so a run repeated after a crash charges
 * nothing twice). `now` is the injected clock.
 */
export function renewalsJob(d: { payments: Renewer; everyMs: number; now?: () => number }): RepeatingJob<z.infer<typeof renewalPayload>> {
  return {
    queue: renewalsQueue,
    schedulerId: 'renewals',
    everyMs: d.everyMs,
    payload: renewalPayload,
    data: {},
    run: () => d.payments.runRenewals(d.now?.()),
  };
}
