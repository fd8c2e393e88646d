import { createHmac } from 'node:crypto';
import { request } from 'node:https';
import { eq } from 'drizzle-orm';
import { webhooks } from '../../../../db/schema/index.ts';
import { checkUrlShape, isRefusedAddress } from '../net-guard.ts';
import { isSkip } from '../send-plan.ts';
import type { Delivery } from '../delivery-log.ts';
import type { NotifyJob } from '../notify-jobs.ts';
import { RetryLater, retryAfterMs, sendAll, type JobContext, type NotifyDeps, type Outcome } from './outcome.ts';

/** `Hubbub-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export function signature(secret: string, body: string, t: number) {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

/**
 * Outgoing webhooks: the same notification as a push (after the same re-check, but without
 * quiet hours: a webhook is read by a program), POSTed as signed JSON to each of the user's URLs.
 */
export async function processWebhook(d: NotifyDeps, job: NotifyJob, ctx: JobContext): Promise<Outcome> {
  const gaveUp = (c: Delivery, err: RetryLater) => d.log.finish(c.id, 'failed', `gave up: ${err.message}`, true);
  let sent = await sendAll(await d.log.pending(job.user, 'webhook', job.conv), (c) => sendOne(d, c), ctx.final, gaveUp);
  const u = await d.planner.user(job.user);
  if (!u || u.deleted) return { outcome: 'skipped', reason: 'no such user' };
  const hooks = await d.db.select({ id: webhooks.id }).from(webhooks).where(eq(webhooks.userId, job.user));
  if (!hooks.length) return sent ? { outcome: 'sent', sent } : { outcome: 'skipped', reason: 'no webhook' };
  const plan = await d.planner.conversation(job.user, job.conv, 'webhook', u, d.now());
  if (isSkip(plan)) return sent ? { outcome: 'sent', sent } : { outcome: 'skipped', reason: plan.skip };
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
  if (!claimed) return sent ? { outcome: 'sent', sent } : { outcome: 'skipped', reason: 'claimed by another run' };
  sent += await sendAll(claimed, (c) => sendOne(d, c), ctx.final, gaveUp);
  return { outcome: 'sent', sent };
}

async function sendOne(d: NotifyDeps, c: Delivery) {
  const [hook] = await d.db.select().from(webhooks).where(eq(webhooks.id, c.target));
  if (!hook) return d.log.finish(c.id, 'failed', 'webhook deleted');
  let url: URL;
  try {
    url = checkUrlShape(hook.url, d.allowPrivate);
  } catch (err) {
    return d.log.finish(c.id, 'failed', (err as Error).message);
  }
  const body = JSON.stringify({ id: c.id, ...c.payload });
  const t = Math.floor(d.now().getTime() / 1000);
  const started = performance.now();
  let res: { status: number; retryAfter?: string };
  try {
    res = await post(d, url, body, { 'hubbub-signature': signature(hook.secret, body, t), 'hubbub-event-id': c.id });
  } catch (err) {
    if (isRefusedAddress(err)) return d.log.finish(c.id, 'failed', (err as Error).message);
    await d.log.attempted(c.id, (err as Error).message);
    throw new RetryLater(`webhook request failed: ${(err as Error).message}`);
  }
  d.metrics.sendSeconds.observe({ channel: 'webhook' }, (performance.now() - started) / 1000);
  if (res.status >= 200 && res.status < 300) return d.log.finish(c.id, 'sent');
  if (res.status === 429 || res.status >= 500 || res.status === 408) {
    await d.log.attempted(c.id, `receiver answered ${res.status}`);
    throw new RetryLater(`receiver answered ${res.status}`, retryAfterMs(res.retryAfter, Date.now()));
  }
  return d.log.finish(c.id, 'failed', `receiver answered ${res.status}`);
}

function post(d: NotifyDeps, url: URL, body: string, headers: Record<string, string>) {
  return new Promise<{ status: number; retryAfter?: string }>((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent: d.agent,
        timeout: 15_000,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'user-agent': 'Hubbub-Webhooks/1', ...headers },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}
