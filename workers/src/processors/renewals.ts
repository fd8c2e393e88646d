import { Queue, Worker, UnrecoverableError, type ConnectionOptions } from 'bullmq';
import type { Logger } from '../../../server/src/observability/logger.ts';
import { renewalJob, renewalsQueue } from '../queues.ts';

/** What the renewal job needs from the payments domain (PaymentsService). */
export interface Renewer {
  runRenewals(now?: number): Promise<{ renewed: number; downgraded: number }>;
}

/**
 * The renewal job scheduler and its worker. Each run charges the subscriptions whose period
 * has ended or downgrades them to free (idempotent per period, so a run repeated after a crash
 * charges nothing twice). `now` is the injected clock.
 */
export async function startRenewals(d: { connection: ConnectionOptions; prefix: string; payments: Renewer; logger: Logger; everyMs: number; now?: () => number }) {
  const queue = new Queue(renewalsQueue, { connection: { ...d.connection, enableOfflineQueue: false }, prefix: d.prefix });
  await queue.upsertJobScheduler('renewals', { every: d.everyMs }, { name: 'renewals', data: { batch: 500 } });
  const worker = new Worker(
    renewalsQueue,
    async (job) => {
      const parsed = renewalJob.safeParse(job.data);
      if (!parsed.success) throw new UnrecoverableError(`bad renewal payload: ${parsed.error.message}`);
      const counts = await d.payments.runRenewals(d.now?.());
      if (counts.renewed || counts.downgraded) d.logger.info({ job: job.id, ...counts }, 'renewals done');
      return counts;
    },
    { connection: { ...d.connection, maxRetriesPerRequest: null }, prefix: d.prefix, concurrency: 1 },
  );
  worker.on('failed', (job, err) => d.logger.warn({ job: job?.id, err: err.message }, 'renewal job failed'));
  return {
    queue,
    worker,
    async close() {
      await worker.close();
      await queue.close();
    },
  };
}
