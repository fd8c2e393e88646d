import { z } from 'zod';

/**
 * The notification queues' vocabulary, shared by the producer (the hub's trigger) and the
 * consumers (BullMQ workers, or the in-process scheduler): queue names, channels, the job
 * payload schema and the coalescing key. Payloads are parsed on both sides.
 */
export const channels = ['push', 'email', 'webhook'] as const;
export type NotifyChannel = (typeof channels)[number];

/** One BullMQ queue per channel. */
export const notifyQueues: Record<NotifyChannel, string> = {
  push: 'notify-push',
  email: 'notify-email',
  webhook: 'notify-webhook',
};

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
export const notifyKey = (channel: NotifyChannel, j: { user: string; conv: string }) =>
  channel === 'email' ? `email:${j.user}` : `${channel}:${j.user}:${j.conv}`;

/**
 * The channels whose targets belong to users (push subscriptions, webhooks): a notification job
 * claims one delivery per target and hands each to a send job of its own, so one slow or dead
 * endpoint holds one send at a time, never another target's or another user's.
 */
export const targetChannels = ['push', 'webhook'] as const;
export type TargetChannel = (typeof targetChannels)[number];

/** One BullMQ queue of send jobs per target channel. */
export const sendQueues: Record<TargetChannel, string> = {
  push: 'notify-push-send',
  webhook: 'notify-webhook-send',
};

/**
 * A send job: one claimed delivery (its row holds the target and the exact payload). Its job
 * id is the delivery id, so queueing it again (a notification job re-run after a crash) adds
 * nothing while it exists.
 */
export const sendJob = z.strictObject({
  delivery: z.uuid(),
  user: z.uuid(),
});
export type SendJob = z.infer<typeof sendJob>;
