import type { StoredDelivery } from '../delivery-log.ts';
import type { SendJob, TargetChannel } from '../notify-jobs.ts';
import { RetryLater, type NotifyDeps, type Outcome, type SendContext } from './outcome.ts';

/** What one request to an endpoint came to. */
export type Attempt =
  | { sent: true }
  /** Permanent; `alive` when the endpoint itself answered (a 4xx), which closes its breaker. */
  | { failed: string; alive?: boolean }
  | { retry: RetryLater };

/**
 * One send job: one delivery to one endpoint, isolated from every other. In order: the user's
 * share of the workers (over it, the job waits a moment without counting an attempt), the
 * endpoint's breaker (paused: no request, the job retries when the pause ends), then one
 * request with a short timeout. Retryable failures count towards the breaker; the last attempt
 * keeps the failure for the owner to see.
 */
export async function deliver(
  channel: TargetChannel,
  d: NotifyDeps,
  job: SendJob,
  ctx: SendContext,
  send: (c: StoredDelivery) => Promise<Attempt>,
): Promise<Outcome> {
  // Asked before anything else (one Redis call): a user over their share costs the others little.
  const share = `${channel}:${job.user}`;
  // A lease outlives the send it covers; a worker that dies holding one frees it after this.
  if (!(await d.share.acquire(share, ctx.holder, d.userConcurrency, 2 * d.sendTimeoutMs + 10_000))) {
    return { outcome: 'postponed', until: Date.now() + Math.ceil(d.sendTimeoutMs * (0.5 + Math.random())) };
  }
  try {
    const c = await d.log.get(job.delivery);
    if (c?.status !== 'sending') return { outcome: 'skipped', reason: 'delivery already finished' };
    const gate = await d.breaker.admit(c.target);
    if (!gate.ok) {
      const why = `endpoint paused after repeated failures, until ${new Date(gate.until).toISOString()}`;
      if (ctx.final) {
        await d.log.finish(c.id, 'failed', `gave up: ${why}`, true);
        return { outcome: 'failed', reason: why };
      }
      await d.log.note(c.id, why);
      throw new RetryLater(why, Math.max(0, gate.until - Date.now()));
    }
    const started = performance.now();
    const r = await send(c);
    if ('sent' in r) {
      d.metrics.sendSeconds.observe({ channel }, (performance.now() - started) / 1000);
      await d.breaker.success(c.target);
      await d.log.finish(c.id, 'sent');
      return { outcome: 'sent', sent: 1 };
    }
    if ('failed' in r) {
      if (r.alive) await d.breaker.success(c.target);
      await d.log.finish(c.id, 'failed', r.failed);
      return { outcome: 'failed', reason: r.failed };
    }
    const { until } = await d.breaker.failure(c.target);
    await d.log.attempted(c.id, r.retry.message);
    if (ctx.final) {
      await d.log.finish(c.id, 'failed', `gave up: ${r.retry.message}`, true);
      return { outcome: 'failed', reason: r.retry.message };
    }
    if (until === undefined) throw r.retry;
    // This failure paused the endpoint: the next try is its probe, when the pause ends.
    throw new RetryLater(`${r.retry.message}; endpoint paused`, Math.max(r.retry.retryAfterMs ?? 0, until - Date.now()));
  } finally {
    await d.share.release(share, ctx.holder);
  }
}
