import type { LookupFunction } from 'node:net';
import type { Redis } from 'ioredis';
import type { Transporter } from 'nodemailer';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import type { Logger } from '../observability/logger.ts';
import type { NotifyMetrics } from '../observability/notify-metrics.ts';
import type { MessageStore } from '../store/message-store.ts';
import { DeliveryLog } from './delivery-log.ts';
import type { BreakerOptions, EndpointBreaker } from './endpoint-breaker.ts';
import { MemoryEndpointBreaker } from './endpoint-breaker.memory.ts';
import { RedisEndpointBreaker } from './endpoint-breaker.redis.ts';
import { guardedAgent } from './net-guard.ts';
import type { NotifyDeps } from './processors/outcome.ts';
import { SendPlanner } from './send-plan.ts';
import { UnsubscribeTokens } from './unsubscribe-token.ts';
import type { UserShare } from './user-share.ts';
import { MemoryUserShare } from './user-share.memory.ts';
import { RedisUserShare } from './user-share.redis.ts';
import type { VapidKeys } from './vapid.ts';

/** Test and deployment seams of the processors. */
export interface NotifyOverrides {
  /** Extra CA certificates trusted by the push and webhook agent (tests' self-signed endpoints). */
  ca?: string | Buffer;
  now?: () => Date;
  /** The resolver below the SSRF guard (tests resolve names under `.localhost`, which the system resolver does not). */
  lookup?: LookupFunction;
}

/** An SMTP transport that loads nodemailer (about 15 MB resident) with the first email, not at start. */
function lazyMailer(url: string): Pick<Transporter, 'sendMail'> {
  let transport: Promise<Transporter> | null = null;
  return {
    sendMail: async (mail) => (await (transport ??= import('nodemailer').then((m) => m.default.createTransport(url)))).sendMail(mail),
  };
}

/** Builds the processors' dependencies from the configuration (each process's composition root calls it once). */
export function notifyDeps(c: {
  config: Config;
  db: Db;
  store: MessageStore;
  logger: Logger;
  metrics: NotifyMetrics;
  vapid: VapidKeys | null;
  secret: string;
  isolation: NotifyIsolation;
  overrides?: NotifyOverrides;
}): NotifyDeps {
  const allowPrivate = c.config.WEBHOOK_ALLOW_PRIVATE;
  return {
    db: c.db,
    planner: new SendPlanner({ db: c.db, store: c.store }),
    log: new DeliveryLog(c.db),
    logger: c.logger,
    metrics: c.metrics,
    now: c.overrides?.now ?? (() => new Date()),
    publicUrl: c.config.PUBLIC_URL,
    vapid: c.vapid,
    mailer: c.config.SMTP_URL ? lazyMailer(c.config.SMTP_URL) : null,
    mailFrom: c.config.SMTP_FROM,
    unsubscribe: new UnsubscribeTokens(c.secret, c.config.PUBLIC_URL),
    agent: guardedAgent({ allowPrivate, ca: c.overrides?.ca, lookup: c.overrides?.lookup }),
    allowPrivate,
    sendTimeoutMs: c.config.NOTIFY_SEND_TIMEOUT_MS,
    userConcurrency: c.config.NOTIFY_USER_CONCURRENCY,
    ...c.isolation,
  };
}

export interface NotifyIsolation {
  breaker: EndpointBreaker;
  share: UserShare;
}

/**
 * The endpoint breakers and user shares: in Redis when there is one (every worker shares them,
 * and the hubs read the breakers for `notifications.deliveries`), in memory in-process.
 */
export function notifyIsolation(config: Config, redis: Redis | null): NotifyIsolation {
  const o: BreakerOptions = {
    failures: config.NOTIFY_BREAKER_FAILURES,
    cooldownMs: config.NOTIFY_BREAKER_COOLDOWN_MS,
    maxCooldownMs: config.NOTIFY_BREAKER_COOLDOWN_MS * 16,
    probeMs: 2 * config.NOTIFY_SEND_TIMEOUT_MS + 10_000,
  };
  return redis
    ? { breaker: new RedisEndpointBreaker(redis, o, config.REDIS_PREFIX), share: new RedisUserShare(redis, config.REDIS_PREFIX) }
    : { breaker: new MemoryEndpointBreaker(o), share: new MemoryUserShare() };
}
