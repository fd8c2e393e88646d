import { createHmac } from 'node:crypto';
import { request } from 'node:https';
import { eq } from 'drizzle-orm';
import { webhooks } from '../../../../db/schema/index.ts';
import { checkUrlShape, isRefusedAddress } from '../net-guard.ts';
import type { StoredDelivery } from '../delivery-log.ts';
import type { NotifyJob, SendJob } from '../notify-jobs.ts';
import { isSkip } from '../send-plan.ts';
import { deliver, type Attempt } from './deliver.ts';
import { RetryLater, retryAfterMs, type JobContext, type NotifyDeps, type Outcome, type SendContext } from './outcome.ts';

/** `Hubbub-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export function signature(secret: string, body: string, t: number) {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

/**
 * Outgoing webhooks: the same notification as a push (after the same re-check, but without
 * quiet hours: a webhook is read by a program), claimed for each of the user's URLs and handed
 * to one send job per URL (`sendWebhook`), which POSTs it as signed JSON.
 */
export async function processWebhook(d: NotifyDeps, job: NotifyJob, ctx: JobContext): Promise<Outcome> {
  // A run after a crash hands on what an earlier run claimed (its send jobs are kept if they exist).
  const pending = (await d.log.pending(job.user, 'webhook', job.conv)).map((c) => c.id);
  if (pending.length) await ctx.dispatch('webhook', job.user, pending);
  const none = (reason: string): Outcome =>
    pending.length ? { outcome: 'dispatched', deliveries: pending.length } : { outcome: 'skipped', reason };
  const u = await d.planner.user(job.user);
  if (!u || u.deleted) return none('no such user');
  const hooks = await d.db.select({ id: webhooks.id }).from(webhooks).where(eq(webhooks.userId, job.user));
  if (!hooks.length) return none('no webhook');
  const plan = await d.planner.conversation(job.user, job.conv, 'webhook', u, d.now());
  if (isSkip(plan)) return none(plan.skip);
  const at = d.now().toISOString();
  const claimed = await d.log.claim({
    userId: job.user,
    channel: 'webhook',
    conv: job.conv,
    plans: [plan],
    targets: hooks.map((h) => h.id),
    payload: () => ({
      type: 'notification',
      user: job.user,
      conversation: job.conv,
      fromSeq: plan.fromSeq,
      toSeq: plan.toSeq,
      count: plan.count,
      mentioned: plan.mentioned,
      title: plan.title,
      body: plan.body,
      at,
    }),
  });
  if (!claimed) return none('claimed by another run');
  await ctx.dispatch(
    'webhook',
    job.user,
    claimed.map((c) => c.id),
  );
  return { outcome: 'dispatched', deliveries: pending.length + claimed.length };
}

/** One POST to one webhook (a send job). */
export function sendWebhook(d: NotifyDeps, job: SendJob, ctx: SendContext): Promise<Outcome> {
  return deliver('webhook', d, job, ctx, (c) => postOnce(d, c));
}

async function postOnce(d: NotifyDeps, c: StoredDelivery): Promise<Attempt> {
  const [hook] = await d.db.select().from(webhooks).where(eq(webhooks.id, c.target));
  if (!hook) return { failed: 'webhook deleted' };
  let url: URL;
  try {
    url = checkUrlShape(hook.url, d.allowPrivate);
  } catch (err) {
    return { failed: (err as Error).message };
  }
  const body = JSON.stringify({ id: c.id, ...c.payload });
  const t = Math.floor(d.now().getTime() / 1000);
  let res: { status: number; retryAfter?: string };
  try {
    res = await post(d, url, body, { 'hubbub-signature': signature(hook.secret, body, t), 'hubbub-event-id': c.id });
  } catch (err) {
    if (isRefusedAddress(err)) return { failed: (err as Error).message };
    return { retry: new RetryLater(`webhook request failed: ${(err as Error).message}`) };
  }
  if (res.status >= 200 && res.status < 300) return { sent: true };
  if (res.status === 429 || res.status >= 500 || res.status === 408) {
    return { retry: new RetryLater(`receiver answered ${res.status}`, retryAfterMs(res.retryAfter, Date.now())) };
  }
  return { failed: `receiver answered ${res.status}`, alive: true };
}

/** One POST, given up after `sendTimeoutMs` in all (a receiver that accepts and stalls, or trickles, included). */
function post(d: NotifyDeps, url: URL, body: string, headers: Record<string, string>) {
  return new Promise<{ status: number; retryAfter?: string }>((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent: d.agent,
        timeout: d.sendTimeoutMs,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'user-agent': 'Hubbub-Webhooks/1',
          ...headers,
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] }));
        res.on('error', reject);
      },
    );
    const deadline = setTimeout(() => req.destroy(new Error(`timed out after ${d.sendTimeoutMs} ms`)), d.sendTimeoutMs);
    req.on('close', () => clearTimeout(deadline));
    req.on('timeout', () => req.destroy(new Error(`timed out after ${d.sendTimeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}
