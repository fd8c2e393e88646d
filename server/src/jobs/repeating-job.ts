import type { z } from 'zod';

/**
 * A job that runs every `everyMs`, owned by its domain (payments renewals, auth maintenance):
 * a BullMQ job scheduler in `npm run workers` (`repeating-job.bullmq.ts`), a timer in the hub
 * when there is no Redis (`repeating-job.inprocess.ts`). `data` passes `payload` on the way in.
 */
export interface RepeatingJob<T = unknown> {
  /** The BullMQ queue (one per job). */
  queue: string;
  /** The job scheduler's id: kept stable, since a new id would add a second schedule beside the old one. */
  schedulerId: string;
  everyMs: number;
  payload: z.ZodType<T>;
  data: T;
  /** Runs once; idempotent, so a run repeated after a crash does nothing twice. Returns what it did, counted. */
  run(data: T): Promise<Record<string, number>>;
}
