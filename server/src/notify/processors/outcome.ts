import type { Db } from '../../db/database.ts';
import type { Logger } from '../../observability/logger.ts';
import type { NotifyMetrics } from '../../observability/notify-metrics.ts';
import type { DeliveryLog } from '../delivery-log.ts';
import type { SendPlanner } from '../send-plan.ts';
import type { UnsubscribeTokens } from '../unsubscribe-token.ts';
import type { VapidKeys } from '../vapid.ts';
import type { Agent } from 'node:https';
import type { Transporter } from 'nodemailer';

/** A failure worth another try (5xx, 429, a timeout), after `retryAfterMs` when the far side said. */
export class RetryLater extends Error {
  override name = 'RetryLater';
  constructor(message: string, readonly retryAfterMs?: number) {
    super(message);
  }
}

export type Outcome =
  | { outcome: 'sent'; sent: number }
  | { outcome: 'skipped'; reason: string }
  | { outcome: 'failed'; reason: string }
  | { outcome: 'postponed'; until: number };

export interface JobContext {
  /** This is the job's last attempt: a retryable failure is now kept as a permanent one. */
  final: boolean;
}

/** What the notification processors need: narrow, built once by the process's composition root. */
export interface NotifyDeps {
  db: Db;
  planner: SendPlanner;
  log: DeliveryLog;
  logger: Logger;
  metrics: NotifyMetrics;
  now: () => Date;
  publicUrl: string;
  vapid: VapidKeys | null;
  /** SMTP (nodemailer's transport, loaded with the first email); null without SMTP_URL. */
  mailer: Pick<Transporter, 'sendMail'> | null;
  mailFrom: string;
  unsubscribe: UnsubscribeTokens;
  /** HTTPS agent for push services and webhooks: its `lookup` refuses private addresses; tests inject a CA. */
  agent: Agent;
  allowPrivate: boolean;
}

/** Parses `Retry-After` (seconds or an HTTP date) into milliseconds from `now`. */
export function retryAfterMs(v: string | string[] | undefined, now: number): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  if (/^\d+$/.test(s.trim())) return Number(s.trim()) * 1000;
  const t = Date.parse(s);
  return Number.isFinite(t) ? Math.max(0, t - now) : undefined;
}

/** Exponential backoff with jitter (1 s, 2 s, 4 s … capped at 15 min), or Retry-After plus a little jitter. */
export function backoffMs(attemptsMade: number, err?: Error, random = Math.random): number {
  const ra = err instanceof RetryLater ? err.retryAfterMs : undefined;
  if (ra !== undefined) return Math.ceil(ra + random() * Math.min(1000, ra * 0.1));
  const base = Math.min(1000 * 2 ** Math.max(0, attemptsMade - 1), 15 * 60_000);
  return Math.ceil(base / 2 + random() * (base / 2));
}

/**
 * Sends every delivery in turn and collects retryable failures, so one slow endpoint does not
 * hold back the others; the job is retried after the longest Retry-After asked.
 */
export async function sendAll<T extends { id: string }>(items: T[], send: (item: T) => Promise<void>, final: boolean, onFinalFailure: (item: T, err: RetryLater) => Promise<void>) {
  let retry: RetryLater | null = null;
  let sent = 0;
  for (const item of items) {
    try {
      await send(item);
      sent++;
    } catch (err) {
      if (!(err instanceof RetryLater)) throw err;
      if (final) await onFinalFailure(item, err);
      else if (!retry || (err.retryAfterMs ?? 0) > (retry.retryAfterMs ?? 0)) retry = err;
    }
  }
  if (retry) throw retry;
  return sent;
}
