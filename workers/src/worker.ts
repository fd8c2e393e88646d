import { Queue, Worker, UnrecoverableError, type ConnectionOptions } from 'bullmq';
import type { Db } from '../../server/src/db/database.ts';
import type { Logger } from '../../server/src/observability/logger.ts';
import { runMaintenance } from './processors/maintenance.ts';
import { startRenewals, type Renewer } from './processors/renewals.ts';
import { MAINTENANCE_EVERY_MS, maintenanceJob, queues } from './queues.ts';

/**
 * The BullMQ side: the maintenance queue with its job scheduler, and a worker processing it.
 * Queues fail fast (no offline queue); the worker waits for Redis (maxRetriesPerRequest: null).
 */
export async function startWorkers(d: {
  db: Db;
  redisUrl: string;
  prefix: string;
  logger: Logger;
  everyMs?: number;
  /** Subscription renewals, when the payments domain is given. */
  renewals?: { payments: Renewer; everyMs: number; now?: () => number };
}) {
  const url = new URL(d.redisUrl);
  const base: ConnectionOptions = { host: url.hostname, port: Number(url.port || 6379), password: url.password || undefined, db: Number(url.pathname.slice(1) || 0) };
  const queue = new Queue(queues.maintenance, { connection: { ...base, enableOfflineQueue: false }, prefix: d.prefix });
  await queue.upsertJobScheduler('maintenance-hourly', { every: d.everyMs ?? MAINTENANCE_EVERY_MS }, { name: 'maintenance', data: { keepDays: 30 } });
  const worker = new Worker(
    queues.maintenance,
    async (job) => {
      const parsed = maintenanceJob.safeParse(job.data);
      if (!parsed.success) throw new UnrecoverableError(`bad maintenance payload: ${parsed.error.message}`);
      const counts = await runMaintenance(d.db, parsed.data);
      d.logger.info({ job: job.id, ...counts }, 'maintenance done');
      return counts;
    },
    { connection: { ...base, maxRetriesPerRequest: null }, prefix: d.prefix, concurrency: 1 },
  );
  worker.on('failed', (job, err) => d.logger.warn({ job: job?.id, err: err.message }, 'job failed'));
  const renewals = d.renewals ? await startRenewals({ connection: base, prefix: d.prefix, logger: d.logger, ...d.renewals }) : null;
  return {
    queue,
    worker,
    renewals,
    async close() {
      await renewals?.close();
      await worker.close();
      await queue.close();
    },
  };
}
