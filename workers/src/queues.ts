import { z } from 'zod';

/**
 * Queue names and job payload schemas, shared by producers and workers (one module, as BullMQ
 * projects do). Payloads are parsed on both sides.
 */
export const queues = {
  maintenance: 'maintenance',
} as const;

export const maintenanceJob = z.strictObject({
  /** Revoked or expired sessions older than this are deleted with their refresh tokens. */
  keepDays: z.number().int().min(1).max(3650).default(30),
});
export type MaintenanceJob = z.infer<typeof maintenanceJob>;

/** How often the maintenance job runs. */
export const MAINTENANCE_EVERY_MS = 60 * 60 * 1000;

/** Subscription renewals and downgrades (server/src/payments): one job scheduler, every PAYMENTS_RENEW_EVERY_MS. */
export const renewalsQueue = 'payments-renewals';
export const renewalJob = z.strictObject({
  /** Most due subscriptions handled per run; the next run takes the rest. */
  batch: z.number().int().min(1).max(10_000).default(500),
});
export type RenewalJob = z.infer<typeof renewalJob>;
