import { eq } from 'drizzle-orm';
import { pushSubscriptions } from '../../../../db/schema/index.ts';
import { checkUrlShape, isRefusedAddress } from '../net-guard.ts';
import type { StoredDelivery } from '../delivery-log.ts';
import type { NotifyJob, SendJob } from '../notify-jobs.ts';
import { isSkip } from '../send-plan.ts';
import { deliver, type Attempt } from './deliver.ts';
import { RetryLater, retryAfterMs, type JobContext, type NotifyDeps, type Outcome, type SendContext } from './outcome.ts';

/** The push payload's JSON stays under this (a Web Push record holds 4096 bytes with its overhead). */
export const PUSH_PAYLOAD_MAX = 3800;

export interface PushPayload {
  conv: string;
  title: string;
  body: string;
  count: number;
  badge: number;
  url: string;
}

/** Cuts the body (then the title) until the JSON fits the cap. */
export function capPayload(p: PushPayload): PushPayload {
  const size = (x: PushPayload) => Buffer.byteLength(JSON.stringify(x));
  let out = p;
  while (size(out) > PUSH_PAYLOAD_MAX && out.body.length > 0) {
    const over = size(out) - PUSH_PAYLOAD_MAX;
    const chars = [...out.body];
    out = { ...out, body: chars.slice(0, Math.max(0, chars.length - Math.max(1, Math.ceil(over / 4)) - 1)).join('') + '…' };
    if (out.body === '…') out = { ...out, body: '' };
  }
  while (size(out) > PUSH_PAYLOAD_MAX) out = { ...out, title: [...out.title].slice(0, -16).join('') };
  return out;
}

/**
 * One push per (user, conversation) burst: the newest message, the count, and the user's total
 * unread as `badge`, after the send-time re-check; claimed for each of the user's
 * subscriptions and handed to one send job per subscription (`sendPush`).
 */
export async function processPush(d: NotifyDeps, job: NotifyJob, ctx: JobContext): Promise<Outcome> {
  // A run after a crash hands on what an earlier run claimed (its send jobs are kept if they exist).
  const pending = (await d.log.pending(job.user, 'push', job.conv)).map((c) => c.id);
  if (pending.length) await ctx.dispatch('push', job.user, pending);
  const none = (reason: string): Outcome =>
    pending.length ? { outcome: 'dispatched', deliveries: pending.length } : { outcome: 'skipped', reason };
  const u = await d.planner.user(job.user);
  if (!u || u.deleted) return none('no such user');
  if (!u.channelOn.push || !d.vapid) return none('push off');
  const now = d.now();
  const plan = await d.planner.conversation(job.user, job.conv, 'push', u, now);
  if (isSkip(plan)) return none(plan.skip);
  const quiet = d.planner.quietUntil(u, now);
  if (quiet) return { outcome: 'postponed', until: quiet.getTime() };
  const subs = await d.db.select({ id: pushSubscriptions.id }).from(pushSubscriptions).where(eq(pushSubscriptions.userId, job.user));
  if (!subs.length) return none('no push subscription');
  const badge = await d.planner.totalUnread(job.user);
  const payload = capPayload({
    conv: job.conv,
    title: plan.title,
    body: plan.body ?? (plan.count === 1 ? 'New message' : `${plan.count} new messages`),
    count: plan.count,
    badge,
    url: new URL(`/#/c/${job.conv}`, d.publicUrl).toString(),
  });
  const claimed = await d.log.claim({
    userId: job.user,
    channel: 'push',
    conv: job.conv,
    plans: [plan],
    targets: subs.map((s) => s.id),
    payload: () => ({ ...payload }),
  });
  if (!claimed) return none('claimed by another run');
  await ctx.dispatch(
    'push',
    job.user,
    claimed.map((c) => c.id),
  );
  return { outcome: 'dispatched', deliveries: pending.length + claimed.length };
}

/** One push to one subscription (a send job). */
export function sendPush(d: NotifyDeps, job: SendJob, ctx: SendContext): Promise<Outcome> {
  return deliver('push', d, job, ctx, (c) => pushOnce(d, c));
}

async function pushOnce(d: NotifyDeps, c: StoredDelivery): Promise<Attempt> {
  const [sub] = await d.db.select().from(pushSubscriptions).where(eq(pushSubscriptions.id, c.target));
  if (!sub) return { failed: 'subscription removed' };
  if (!d.vapid) return { retry: new RetryLater('push is not configured') };
  // Loaded with the first push (about 12 MB resident): an idle hub has sent none.
  const { default: webPush, WebPushError } = await import('web-push');
  try {
    checkUrlShape(sub.endpoint, d.allowPrivate);
    await webPush.sendNotification({ endpoint: sub.endpoint, keys: { p256dh: sub.p256dh, auth: sub.auth } }, JSON.stringify(c.payload), {
      vapidDetails: { subject: d.vapid.subject, publicKey: d.vapid.publicKey, privateKey: d.vapid.privateKey },
      TTL: 24 * 3600,
      // The delivery id: a re-sent copy replaces the first at the push service instead of adding one.
      topic: c.id.replace(/-/g, ''),
      urgency: 'normal',
      agent: d.agent,
      timeout: d.sendTimeoutMs,
    });
    return { sent: true };
  } catch (err) {
    if (err instanceof WebPushError) {
      const status = err.statusCode;
      if (status === 404 || status === 410) {
        // The browser dropped the subscription: forget it.
        await d.db.delete(pushSubscriptions).where(eq(pushSubscriptions.id, sub.id));
        return { failed: `push service answered ${status}: subscription deleted`, alive: true };
      }
      if (status === 429 || status >= 500)
        return { retry: new RetryLater(`push service answered ${status}`, retryAfterMs(err.headers?.['retry-after'], Date.now())) };
      return { failed: `push service answered ${status}`, alive: true };
    }
    if (isRefusedAddress(err) || (err as { code?: string }).code === 'BAD_REQUEST') return { failed: (err as Error).message };
    return { retry: new RetryLater(`push request failed: ${(err as Error).message}`) };
  }
}
