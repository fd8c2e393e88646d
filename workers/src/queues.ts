import { z } from 'zod';

/**
 * Queue names and job payload schemas, shared by producers and workers (one module, as BullMQ
 * projects do). Payloads are parsed on both sides.
 */
export const queues = {
  maintenance: 'maintenance',
  push: 'notify-push',
  email: 'notify-email',
  webhook: 'notify-webhook',
} as const;

/** The notification channels, each with its own queue and processor. */
export const channels = ['push', 'email', 'webhook'] as const;
export type Channel = (typeof channels)[number];

/**
 * A notification job: tiny on purpose (the worker reads everything else from the database at
 * send time). `seq` is the event that caused it; the job covers every unread seq up to the head.
 */
export const notifyJob = z.strictObject({
  user: z.uuid(),
  conv: z.uuid(),
  seq: z.number().int().min(1),
});
export type NotifyJob = z.infer<typeof notifyJob>;

/**
 * The coalescing key: one pending push or webhook job per (user, conversation), one pending
 * email digest per user.
 */
export const notifyKey = (channel: Channel, j: { user: string; conv: string }) =>
  channel === 'email' ? `email:${j.user}` : `${channel}:${j.user}:${j.conv}`;

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
