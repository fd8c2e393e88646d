import { notifyKey, type NotifyChannel, type NotifyJob, type TargetChannel } from './notify-jobs.ts';
import type { NotifyScheduler } from './notify-scheduler.ts';
import { backoffMs, type NotifyDeps, type Outcome } from './processors/outcome.ts';
import { runNotifyJob, runSendJob } from './processors/run-job.ts';

/**
 * Without Redis there is no BullMQ: the hub runs the same processors on timers, with the same
 * coalescing (one pending job per key), one send job per claimed delivery (keyed by its id),
 * retries with backoff, and postponement (quiet hours, a user over their share). Jobs pending
 * at shutdown are lost with the process; the single-replica embedded setup accepts that (a
 * claimed delivery is sent by the next notification job of its conversation).
 */
export class InProcessNotifier implements NotifyScheduler {
  private timers = new Map<string, NodeJS.Timeout>();
  /** Keys of jobs running now: a job is never queued twice while it runs. */
  private active = new Set<string>();
  private running = new Set<Promise<unknown>>();
  private closed = false;

  constructor(
    private readonly d: NotifyDeps,
    private readonly o: { delays: Record<NotifyChannel, number>; attempts: number },
  ) {}

  async enqueue(channel: NotifyChannel, jobs: NotifyJob[]) {
    this.d.metrics.enqueued.inc({ channel }, jobs.length);
    for (const j of jobs) {
      const key = notifyKey(channel, j);
      const final = (attempt: number) => attempt + 1 >= this.o.attempts;
      if (!this.timers.has(key))
        this.schedule(key, this.o.delays[channel], 0, (attempt) =>
          runNotifyJob(channel, this.d, j, { final: final(attempt), dispatch: this.dispatch }),
        );
    }
  }

  private dispatch = async (channel: TargetChannel, userId: string, ids: string[]) => {
    for (const id of ids) {
      const key = `send:${id}`;
      if (this.timers.has(key) || this.active.has(key)) continue;
      this.schedule(key, 0, 0, (attempt) =>
        runSendJob(channel, this.d, { delivery: id, user: userId }, { final: attempt + 1 >= this.o.attempts, holder: key }),
      );
    }
  };

  private schedule(key: string, delay: number, attempt: number, run: (attempt: number) => Promise<Outcome>) {
    if (this.closed) return;
    const t = setTimeout(
      () => {
        this.timers.delete(key);
        this.active.add(key);
        const p = this.run(key, attempt, run).finally(() => this.active.delete(key));
        this.running.add(p);
        void p.finally(() => this.running.delete(p));
      },
      Math.max(0, Math.min(delay, 2 ** 31 - 1)),
    );
    t.unref();
    this.timers.set(key, t);
  }

  private async run(key: string, attempt: number, run: (attempt: number) => Promise<Outcome>) {
    try {
      const r = await run(attempt);
      if (r.outcome === 'postponed' && !this.timers.has(key)) this.schedule(key, r.until - Date.now(), attempt, run);
    } catch (err) {
      if (attempt + 1 < this.o.attempts) {
        if (!this.timers.has(key)) this.schedule(key, backoffMs(attempt + 1, err as Error), attempt + 1, run);
      } else this.d.logger.warn({ job: key, err: (err as Error).message }, 'notification job failed');
    }
  }

  async close() {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.running]);
  }
}
