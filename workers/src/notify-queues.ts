import { DelayedError, Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { NotifyScheduler, TriggerJob } from '../../server/src/notify/trigger.ts';
import type { NotifyMetrics } from '../../server/src/observability/notify-metrics.ts';
import type { Logger } from '../../server/src/observability/logger.ts';
import { runNotifyJob } from './notify-runner.ts';
import { backoffMs, type NotifyDeps } from './processors/outcome.ts';
import { channels, notifyJob, notifyKey, queues, type Channel } from './queues.ts';

export interface NotifyQueueOptions {
  connection: ConnectionOptions;
  prefix: string;
  delays: Record<Channel, number>;
  attempts: number;
}

export const connectionOf = (redisUrl: string): ConnectionOptions => {
  const url = new URL(redisUrl);
  return { host: url.hostname, port: Number(url.port || 6379), password: url.password || undefined, db: Number(url.pathname.slice(1) || 0) };
};

/**
 * The producer side (hub replicas): one BullMQ queue per channel. A job is delayed by the
 * channel's window and deduplicated by its (user, conversation) key until it starts, so a burst
 * becomes one job. The worker frees the key as its first step: an event after that makes a new
 * job, which covers only what the first did not (the claim's cursor); an event before it is
 * covered by the running job, which reads the head afterwards.
 */
export class BullNotifyScheduler implements NotifyScheduler {
  readonly queues: Record<Channel, Queue>;

  constructor(private readonly o: NotifyQueueOptions, private readonly metrics?: NotifyMetrics, logger?: Logger) {
    this.queues = Object.fromEntries(
      channels.map((c) => [c, new Queue(queues[c], { connection: { ...o.connection, enableOfflineQueue: false }, prefix: o.prefix })]),
    ) as Record<Channel, Queue>;
    // Redis away: enqueueing fails fast (the trigger logs it); the connection errors are logged, not thrown.
    for (const q of Object.values(this.queues)) q.on('error', (err) => logger?.warn({ err: err.message, queue: q.name }, 'notification queue error'));
  }

  async enqueue(channel: Channel, jobs: TriggerJob[]) {
    this.metrics?.enqueued.inc({ channel }, jobs.length);
    const delay = this.o.delays[channel];
    await this.queues[channel].addBulk(
      jobs.map((j) => ({
        name: channel,
        data: j,
        opts: {
          delay,
          deduplication: { id: notifyKey(channel, j) },
          attempts: this.o.attempts,
          backoff: { type: 'notify' },
          removeOnComplete: { count: 1000 },
          // Failed jobs are kept (the alert watches this set); deliveries hold the detail.
          removeOnFail: { count: 10_000 },
        },
      })),
    );
  }

  async depth() {
    const out: Record<string, Record<string, number>> = {};
    for (const c of channels) out[c] = await this.queues[c].getJobCounts('waiting', 'delayed', 'active', 'failed');
    return out;
  }

  /** Closes the queues; with Redis away a clean close would wait for it, so it gives up after a second. */
  async close() {
    await Promise.all(
      channels.map(async (c) => {
        const q = this.queues[c];
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), 1000)));
        await Promise.race([q.close().catch(() => {}), late]);
        clearTimeout(timer);
        // Whatever close left (a connection still reconnecting after a Redis restart) is dropped.
        void q.disconnect().catch(() => {});
      }),
    );
  }
}

/**
 * The consumer side (`npm run workers`, or tests): one BullMQ worker per channel running the
 * shared processors. Quiet hours move the job back to delayed (DelayedError); a bad payload is
 * an UnrecoverableError; retryable failures back off exponentially with jitter, or as long as
 * the far side's Retry-After asked.
 */
export function startNotifyWorkers(d: NotifyDeps, o: { connection: ConnectionOptions; prefix: string; concurrency: number; lockMs?: number }) {
  const workers = channels.map(
    (channel) =>
      new Worker(
        queues[channel],
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
