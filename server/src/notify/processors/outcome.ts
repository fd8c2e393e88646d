import type { Db } from '../../db/database.ts';
import type { Logger } from '../../observability/logger.ts';
import type { NotifyMetrics } from '../../observability/notify-metrics.ts';
import type { DeliveryLog } from '../delivery-log.ts';
import type { EndpointBreaker } from '../endpoint-breaker.ts';
import type { TargetChannel } from '../notify-jobs.ts';
import type { SendPlanner } from '../send-plan.ts';
import type { UserShare } from '../user-share.ts';
import type { UnsubscribeTokens } from '../unsubscribe-token.ts';
import type { VapidKeys } from '../vapid.ts';
import type { Agent } from 'node:https';
import type { Transporter } from 'nodemailer';

/** A failure worth another try (5xx, 429, a timeout), after `retryAfterMs` when the far side said. */
export class RetryLater extends Error {
  override name = 'RetryLater';
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export type Outcome =
  | { outcome: 'sent'; sent: number }
  | { outcome: 'dispatched'; deliveries: number }
  | { outcome: 'skipped'; reason: string }
  | { outcome: 'failed'; reason: string }
  | { outcome: 'postponed'; until: number };

export interface JobContext {
  /** This is the job's last attempt: a retryable failure is now kept as a permanent one. */
  final: boolean;
  /**
   * Hands claimed deliveries to send jobs of their own (push, webhook), one per delivery id:
   * handing the same id again while its job exists adds nothing.
   */
  dispatch(channel: TargetChannel, userId: string, deliveryIds: string[]): Promise<void>;
}

export interface SendContext {
  final: boolean;
  /** The send job's id: it holds the user's share slot while it runs. */
  holder: string;
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
  /** HTTPS agent for push services and webhooks: it refuses private addresses; tests inject a CA. */
  agent: Agent;
  allowPrivate: boolean;
  /** Per request to a push service or a webhook receiver. */
  sendTimeoutMs: number;
  breaker: EndpointBreaker;
  share: UserShare;
  /** A user's sends in flight at once per channel, across workers. */
  userConcurrency: number;
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
 * Sends every delivery in turn and collects retryable failures; the job is retried after the
 * longest Retry-After asked. Email only: its one target is our own SMTP server, while push and
 * webhook targets belong to users and each gets a send job of its own (`deliver.ts`).
 */
export async function sendAll<T extends { id: string }>(
  items: T[],
  send: (item: T) => Promise<void>,
  final: boolean,
  onFinalFailure: (item: T, err: RetryLater) => Promise<void>,
) {
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
