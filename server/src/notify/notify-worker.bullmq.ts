import { DelayedError, Queue, UnrecoverableError, Worker, type Job, type RedisOptions } from 'bullmq';
import { channels, notifyJob, notifyQueues, sendJob, sendQueues, targetChannels, type TargetChannel } from './notify-jobs.ts';
import { backoffMs, type JobContext, type NotifyDeps, type Outcome } from './processors/outcome.ts';
import { runNotifyJob, runSendJob } from './processors/run-job.ts';

export interface NotifyWorkerOptions {
  connection: RedisOptions;
  prefix: string;
  /** Jobs run at once per queue (each channel's notification queue and send queue). */
  concurrency: number;
  lockMs?: number;
  /** Attempts of a send job (NOTIFY_ATTEMPTS). */
  attempts: number;
}

/**
 * The consumer side (`npm run workers`, or tests): per channel a BullMQ worker running the
 * notification jobs (re-check, claim, and for push and webhooks, one send job per claimed
 * delivery), and for push and webhooks a worker running the send jobs. Quiet hours and a user
 * over their share move a job back to delayed (DelayedError, no attempt counted); a bad payload
 * is an UnrecoverableError; retryable failures back off exponentially with jitter, or as long as
 * the far side's Retry-After or the endpoint's pause asks.
 */
export function startNotifyWorkers(d: NotifyDeps, o: NotifyWorkerOptions) {
  const connection = { ...o.connection, maxRetriesPerRequest: null };
  const settings = {
    connection,
    prefix: o.prefix,
    concurrency: o.concurrency,
    ...(o.lockMs ? { lockDuration: o.lockMs, stalledInterval: Math.max(500, Math.floor(o.lockMs / 2)) } : {}),
    settings: { backoffStrategy: (attemptsMade: number, _type?: string, err?: Error) => backoffMs(attemptsMade, err) },
  };
  const sendQueue = Object.fromEntries(
    targetChannels.map((c) => [
      c,
      new Queue(sendQueues[c], { connection: { ...o.connection, enableOfflineQueue: false }, prefix: o.prefix }),
    ]),
  ) as Record<TargetChannel, Queue>;
  const dispatch = sendDispatch(sendQueue, o.attempts);
  /** Postponed: back to delayed until then, without counting an attempt. */
  const settle = async (job: Job, token: string | undefined, r: Outcome) => {
    if (r.outcome !== 'postponed') return r;
    await job.moveToDelayed(r.until, token);
    throw new DelayedError();
  };
  const final = (job: Job) => job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
  const workers = [
    ...channels.map(
      (channel) =>
        new Worker(
          notifyQueues[channel],
          async (job: Job, token?: string) => {
            const parsed = notifyJob.safeParse(job.data);
            if (!parsed.success) throw new UnrecoverableError(`bad notification payload: ${parsed.error.message}`);
            if (job.attemptsMade === 0) await job.removeDeduplicationKey();
            return settle(job, token, await runNotifyJob(channel, d, parsed.data, { final: final(job), dispatch }));
          },
          settings,
        ),
    ),
    ...targetChannels.map(
      (channel) =>
        new Worker(
          sendQueues[channel],
          async (job: Job, token?: string) => {
            const parsed = sendJob.safeParse(job.data);
            if (!parsed.success) throw new UnrecoverableError(`bad send payload: ${parsed.error.message}`);
            return settle(job, token, await runSendJob(channel, d, parsed.data, { final: final(job), holder: job.id! }));
          },
          settings,
        ),
    ),
  ];
  for (const w of workers) w.on('error', (err) => d.logger.warn({ err: err.message, queue: w.name }, 'notification worker error'));
  for (const w of workers)
    w.on('failed', (job, err) => d.logger.warn({ job: job?.id, queue: w.name, err: err.message }, 'notification job failed'));
  return {
    workers,
    sendQueues: sendQueue,
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all(Object.values(sendQueue).map((q) => q.close()));
    },
  };
}

/**
 * Hands claimed deliveries to their send jobs: the job id is the delivery id, so handing one
 * again (a notification job re-run after its worker died) adds nothing while its job exists.
 */
export function sendDispatch(queues: Record<TargetChannel, Queue>, attempts: number): JobContext['dispatch'] {
  return async (channel, userId, ids) => {
    await queues[channel].addBulk(
      ids.map((id) => ({
        name: channel,
        data: { delivery: id, user: userId },
        opts: { jobId: id, attempts, backoff: { type: 'notify' }, removeOnComplete: { count: 1000 }, removeOnFail: { count: 10_000 } },
      })),
    );
  };
}
