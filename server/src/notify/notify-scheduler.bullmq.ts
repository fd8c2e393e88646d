import { Queue, type RedisOptions } from 'bullmq';
import type { Logger } from '../observability/logger.ts';
import type { NotifyMetrics } from '../observability/notify-metrics.ts';
import { channels, notifyKey, notifyQueues, sendQueues, targetChannels, type NotifyChannel, type NotifyJob } from './notify-jobs.ts';
import type { NotifyScheduler } from './notify-scheduler.ts';

export interface NotifyQueueOptions {
  connection: RedisOptions;
  prefix: string;
  delays: Record<NotifyChannel, number>;
  attempts: number;
}

/**
 * The producer side (hub replicas): one BullMQ queue per channel. A job is delayed by the
 * channel's window and deduplicated by its (user, conversation) key until it starts, so a burst
 * becomes one job. The worker frees the key as its first step: an event after that makes a new
 * job, which covers only what the first did not (the claim's cursor); an event before it is
 * covered by the running job, which reads the head afterwards.
 */
export class BullNotifyScheduler implements NotifyScheduler {
  readonly queues: Record<NotifyChannel, Queue>;
  /** The per-target send queues, opened on the first `depth()` (only the workers export it). */
  private sendQueues: Queue[] = [];

  constructor(
    private readonly o: NotifyQueueOptions,
    private readonly metrics?: NotifyMetrics,
    private readonly logger?: Logger,
  ) {
    this.queues = Object.fromEntries(channels.map((c) => [c, this.open(notifyQueues[c])])) as Record<NotifyChannel, Queue>;
  }

  /** Redis away: enqueueing fails fast (the trigger logs it); the connection errors are logged, not thrown. */
  private open(name: string): Queue {
    const q = new Queue(name, { connection: { ...this.o.connection, enableOfflineQueue: false }, prefix: this.o.prefix });
    q.on('error', (err) => this.logger?.warn({ err: err.message, queue: q.name }, 'notification queue error'));
    return q;
  }

  async enqueue(channel: NotifyChannel, jobs: NotifyJob[]) {
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

  /** Jobs per queue and state: the channel queues by channel, the send queues as `<channel>-send`. */
  async depth() {
    if (!this.sendQueues.length) this.sendQueues = targetChannels.map((c) => this.open(sendQueues[c]));
    const out: Record<string, Record<string, number>> = {};
    for (const c of channels) out[c] = await this.queues[c].getJobCounts('waiting', 'delayed', 'active', 'failed');
    for (const [i, c] of targetChannels.entries())
      out[`${c}-send`] = await this.sendQueues[i]!.getJobCounts('waiting', 'delayed', 'active', 'failed');
    return out;
  }

  /** Closes the queues; with Redis away a clean close would wait for it, so it gives up after a second. */
  async close() {
    await Promise.all(
      [...Object.values(this.queues), ...this.sendQueues].map(async (q) => {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), 1000)));
        await Promise.race([
          q.close().catch((err: Error) => this.logger?.warn({ err: err.message, queue: q.name }, 'closing a notification queue failed')),
          late,
        ]);
        clearTimeout(timer);
        // Whatever close left (a connection still reconnecting after a Redis restart) is dropped.
        void q
          .disconnect()
          .catch((err: Error) => this.logger?.warn({ err: err.message, queue: q.name }, 'dropping a notification queue connection failed'));
      }),
    );
  }
}
