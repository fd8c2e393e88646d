import { notifyKey, type NotifyChannel, type NotifyJob } from './notify-jobs.ts';
import type { NotifyScheduler } from './notify-scheduler.ts';
import { backoffMs, type NotifyDeps } from './processors/outcome.ts';
import { runNotifyJob } from './processors/run-job.ts';

/**
 * Without Redis there is no BullMQ: the hub runs the same processors on timers, with the same
 * coalescing (one pending job per key), retries with backoff and quiet-hour postponement. Jobs
 * pending at shutdown are lost with the process; the single-replica embedded setup accepts that.
 */
export class InProcessNotifier implements NotifyScheduler {
  private timers = new Map<string, NodeJS.Timeout>();
  private running = new Set<Promise<unknown>>();
  private closed = false;

  constructor(private readonly d: NotifyDeps, private readonly o: { delays: Record<NotifyChannel, number>; attempts: number }) {}

  async enqueue(channel: NotifyChannel, jobs: NotifyJob[]) {
    this.d.metrics.enqueued.inc({ channel }, jobs.length);
    for (const j of jobs) {
      const key = notifyKey(channel, j);
      if (!this.timers.has(key)) this.schedule(key, channel, j, this.o.delays[channel], 0);
    }
  }

  private schedule(key: string, channel: NotifyChannel, job: NotifyJob, delay: number, attempt: number) {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.timers.delete(key);
      const p = this.run(key, channel, job, attempt);
      this.running.add(p);
      void p.finally(() => this.running.delete(p));
    }, Math.max(0, Math.min(delay, 2 ** 31 - 1)));
    t.unref();
    this.timers.set(key, t);
  }

  private async run(key: string, channel: NotifyChannel, job: NotifyJob, attempt: number) {
    try {
      const r = await runNotifyJob(channel, this.d, job, { final: attempt + 1 >= this.o.attempts });
      if (r.outcome === 'postponed' && !this.timers.has(key)) this.schedule(key, channel, job, r.until - Date.now(), attempt);
    } catch (err) {
      if (attempt + 1 < this.o.attempts) {
        if (!this.timers.has(key)) this.schedule(key, channel, job, backoffMs(attempt + 1, err as Error), attempt + 1);
      } else this.d.logger.warn({ channel, err: (err as Error).message }, 'notification job failed');
    }
  }

  async close() {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.running]);
  }
}
