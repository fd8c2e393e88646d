import { Queue, UnrecoverableError, Worker, type RedisOptions } from 'bullmq';
import type { Logger } from '../observability/logger.ts';
import type { RepeatingJob } from './repeating-job.ts';

/**
 * The BullMQ side of repeating jobs: per job a queue with its job scheduler and a worker of
 * concurrency 1. Queues fail fast (no offline queue); workers wait for Redis
 * (maxRetriesPerRequest: null).
 */
// biome-ignore lint/suspicious/noExplicitAny: one list holds jobs whose payload types differ
export async function startRepeatingJobs(jobs: RepeatingJob<any>[], o: { connection: RedisOptions; prefix: string; logger: Logger }) {
  const started: { queue: Queue; worker: Worker }[] = [];
  for (const job of jobs) {
    const queue = new Queue(job.queue, { connection: { ...o.connection, enableOfflineQueue: false }, prefix: o.prefix });
    await queue.upsertJobScheduler(job.schedulerId, { every: job.everyMs }, { name: job.queue, data: job.data });
    const worker = new Worker(
      job.queue,
      async (j) => {
        const parsed = job.payload.safeParse(j.data);
        if (!parsed.success) throw new UnrecoverableError(`bad ${job.queue} payload: ${parsed.error.message}`);
        const counts = await job.run(parsed.data);
        if (Object.values(counts).some((n) => n > 0)) o.logger.info({ job: j.id, ...counts }, `${job.queue} done`);
        return counts;
      },
      { connection: { ...o.connection, maxRetriesPerRequest: null }, prefix: o.prefix, concurrency: 1 },
    );
    worker.on('failed', (j, err) => o.logger.warn({ job: j?.id, queue: job.queue, err: err.message }, 'repeating job failed'));
    worker.on('error', (err) => o.logger.warn({ queue: job.queue, err: err.message }, 'repeating job worker error'));
    started.push({ queue, worker });
  }
  return {
    /** The worker of a job's queue (tests wait for its `completed` event). */
    worker(queue: string): Worker {
      const w = started.find((s) => s.queue.name === queue)?.worker;
      if (!w) throw new Error(`no repeating job on queue ${queue}`);
      return w;
    },
    async close() {
      for (const s of started.reverse()) {
        await s.worker.close();
        await s.queue.close();
      }
    },
  };
}
