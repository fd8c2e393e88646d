import { DelayedError, UnrecoverableError, Worker, type Job, type RedisOptions } from 'bullmq';
import { channels, notifyJob, notifyQueues } from './notify-jobs.ts';
import { runNotifyJob } from './processors/run-job.ts';
import { backoffMs, type NotifyDeps } from './processors/outcome.ts';

/**
 * The consumer side (`npm run workers`, or tests): one BullMQ worker per channel running the
 * shared processors. Quiet hours move the job back to delayed (DelayedError); a bad payload is
 * an UnrecoverableError; retryable failures back off exponentially with jitter, or as long as
 * the far side's Retry-After asked.
 */
export function startNotifyWorkers(d: NotifyDeps, o: { connection: RedisOptions; prefix: string; concurrency: number; lockMs?: number }) {
  const workers = channels.map(
    (channel) =>
      new Worker(
        notifyQueues[channel],
        async (job: Job, token?: string) => {
          const parsed = notifyJob.safeParse(job.data);
          if (!parsed.success) throw new UnrecoverableError(`bad notification payload: ${parsed.error.message}`);
          if (job.attemptsMade === 0) await job.removeDeduplicationKey();
          const final = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
          const r = await runNotifyJob(channel, d, parsed.data, { final });
          if (r.outcome === 'postponed') {
            await job.moveToDelayed(r.until, token);
            throw new DelayedError();
          }
          return r;
        },
        {
          connection: { ...o.connection, maxRetriesPerRequest: null },
          prefix: o.prefix,
          concurrency: o.concurrency,
          ...(o.lockMs ? { lockDuration: o.lockMs, stalledInterval: Math.max(500, Math.floor(o.lockMs / 2)) } : {}),
          settings: { backoffStrategy: (attemptsMade: number, _type?: string, err?: Error) => backoffMs(attemptsMade, err) },
        },
      ),
  );
  for (const w of workers) w.on('error', (err) => d.logger.warn({ err: err.message, queue: w.name }, 'notification worker error'));
  for (const w of workers) w.on('failed', (job, err) => d.logger.warn({ job: job?.id, queue: w.name, err: err.message }, 'notification job failed'));
  return {
    workers,
    async close() {
      await Promise.all(workers.map((w) => w.close()));
    },
  };
}
