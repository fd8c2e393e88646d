import type { NotifyChannel, NotifyJob } from './notify-jobs.ts';

/**
 * Where the trigger puts notification jobs: BullMQ queues with Redis
 * (`notify-scheduler.bullmq.ts`, consumed by `npm run workers`), the same processors on timers
 * in the hub without (`notify-scheduler.inprocess.ts`).
 */
export interface NotifyScheduler {
  /** Queues jobs, coalescing them per (user, conversation) (email: per user) while one is pending. */
  enqueue(channel: NotifyChannel, jobs: NotifyJob[]): Promise<void>;
  close(): Promise<void>;
}
