import { eq } from 'drizzle-orm';
import { pushSubscriptions } from '../../../../db/schema/index.ts';
import { checkUrlShape, isRefusedAddress } from '../net-guard.ts';
import { isSkip } from '../send-plan.ts';
import type { Delivery } from '../delivery-log.ts';
import type { NotifyJob } from '../notify-jobs.ts';
import { RetryLater, retryAfterMs, sendAll, type JobContext, type NotifyDeps, type Outcome } from './outcome.ts';

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
 * unread as `badge`, to each of the user's subscriptions, after the send-time re-check.
 */
export async function processPush(d: NotifyDeps, job: NotifyJob, ctx: JobContext): Promise<Outcome> {
  let sent = await sendPending(d, job, ctx);
  const u = await d.planner.user(job.user);
  if (!u || u.deleted) return { outcome: 'skipped', reason: 'no such user' };
  if (!u.channelOn.push || !d.vapid) return sent ? { outcome: 'sent', sent } : { outcome: 'skipped', reason: 'push off' };
  const now = d.now();
  const plan = await d.planner.conversation(job.user, job.conv, 'push', u, now);
  if (isSkip(plan)) return sent ? { outcome: 'sent', sent } : { outcome: 'skipped', reason: plan.skip };
  const quiet = d.planner.quietUntil(u, now);
  if (quiet) return { outcome: 'postponed', until: quiet.getTime() };
  const subs = await d.db.select({ id: pushSubscriptions.id }).from(pushSubscriptions).where(eq(pushSubscriptions.userId, job.user));
  if (!subs.length) return { outcome: 'skipped', reason: 'no push subscription' };
  const badge = await d.planner.totalUnread(job.user);
  const payload = capPayload({
    conv: job.conv,
    title: plan.title,
    body: plan.body ?? (plan.count === 1 ? 'New message' : `${plan.count} new messages`),
    count: plan.count,
    badge,
    url: new URL(`/#/c/${job.conv}`, d.publicUrl).toString(),
  });
  const claimed = await d.log.claim({ userId: job.user, channel: 'push', conv: job.conv, plans: [plan], targets: subs.map((s) => s.id), payload: () => ({ ...payload }) });
  if (!claimed) return sent ? { outcome: 'sent', sent } : { outcome: 'skipped', reason: 'claimed by another run' };
  sent += await sendAll(claimed, (c) => sendOne(d, c), ctx.final, (c, err) => d.log.finish(c.id, 'failed', `gave up: ${err.message}`, true));
  return sent ? { outcome: 'sent', sent } : { outcome: 'failed', reason: 'no subscription accepted it' };
}

async function sendPending(d: NotifyDeps, job: NotifyJob, ctx: JobContext) {
  const pending = await d.log.pending(job.user, 'push', job.conv);
  if (!pending.length) return 0;
  return sendAll(pending, (c) => sendOne(d, c), ctx.final, (c, err) => d.log.finish(c.id, 'failed', `gave up: ${err.message}`, true));
}

async function sendOne(d: NotifyDeps, c: Delivery): Promise<void> {
  const [sub] = await d.db.select().from(pushSubscriptions).where(eq(pushSubscriptions.id, c.target));
  if (!sub) return d.log.finish(c.id, 'failed', 'subscription removed');
  if (!d.vapid) throw new RetryLater('push is not configured');
  // Loaded with the first push (about 12 MB resident): an idle hub has sent none.
  const { default: webPush, WebPushError } = await import('web-push');
  const started = performance.now();
  try {
    checkUrlShape(sub.endpoint, d.allowPrivate);
    await webPush.sendNotification({ endpoint: sub.endpoint, keys: { p256dh: sub.p256dh, auth: sub.auth } }, JSON.stringify(c.payload), {
      vapidDetails: { subject: d.vapid.subject, publicKey: d.vapid.publicKey, privateKey: d.vapid.privateKey },
      TTL: 24 * 3600,
      // The delivery id: a re-sent copy replaces the first at the push service instead of adding one.
      topic: c.id.replace(/-/g, ''),
      urgency: 'normal',
      agent: d.agent,
      timeout: 15_000,
    });
    d.metrics.sendSeconds.observe({ channel: 'push' }, (performance.now() - started) / 1000);
    await d.log.finish(c.id, 'sent');
  } catch (err) {
    if (err instanceof WebPushError) {
      const status = err.statusCode;
      if (status === 404 || status === 410) {
        // The browser dropped the subscription: forget it.
        await d.db.delete(pushSubscriptions).where(eq(pushSubscriptions.id, sub.id));
        return d.log.finish(c.id, 'failed', `push service answered ${status}: subscription deleted`);
      }
      if (status === 429 || status >= 500) {
        await d.log.attempted(c.id, `push service answered ${status}`);
        throw new RetryLater(`push service answered ${status}`, retryAfterMs(err.headers?.['retry-after'], Date.now()));
      }
      return d.log.finish(c.id, 'failed', `push service answered ${status}`);
    }
    if (isRefusedAddress(err) || (err as { code?: string }).code === 'BAD_REQUEST') return d.log.finish(c.id, 'failed', (err as Error).message);
    await d.log.attempted(c.id, (err as Error).message);
    throw new RetryLater(`push request failed: ${(err as Error).message}`);
  }
}
