import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import type { Config } from '../config.ts';
import type { Database, Db } from '../db/database.ts';
import type { Presence } from '../presence/presence.ts';
import { redisConnection } from '../jobs/redis-connection.ts';
import type { Logger } from '../observability/logger.ts';
import { createNotifyMetrics } from '../observability/notify-metrics.ts';
import type { MessageStore } from '../store/message-store.ts';
import { NotificationSettings } from './notification-settings.ts';
import { notifyDeps, notifyIsolation, type NotifyOverrides } from './notify-deps.ts';
import type { NotifyChannel } from './notify-jobs.ts';
import type { NotifyScheduler } from './notify-scheduler.ts';
import { InProcessNotifier } from './notify-scheduler.inprocess.ts';
import { NotifyTrigger } from './trigger.ts';
import { notifySecret, UnsubscribeTokens } from './unsubscribe-token.ts';
import { vapidKeys } from './vapid.ts';

export const notifyDelays = (c: Config): Record<NotifyChannel, number> => ({
  push: c.NOTIFY_PUSH_DELAY_MS,
  webhook: c.NOTIFY_PUSH_DELAY_MS,
  email: c.NOTIFY_EMAIL_DELAY_S * 1000,
});

/**
 * Notifications as a hub replica has them: the settings service for the API, the trigger for
 * the hub's port, and the scheduler behind it: BullMQ queues with Redis (the workers process
 * them), the same processors in-process without (and BullMQ is then not loaded at all).
 */
export async function setupNotifications(c: {
  config: Config;
  db: Db;
  /** Prepared statements on the same database (Database.query). */
  query: Database['query'];
  store: MessageStore;
  presence: Presence;
  logger: Logger;
  registry: Registry;
  jwtSecret: string;
  /** The replica's Redis client when REDIS_URL is set: the endpoint breakers the workers keep there are read for the API. */
  redis: Redis | null;
  overrides?: NotifyOverrides;
}) {
  const { config } = c;
  const vapid = vapidKeys(config, c.logger);
  const metrics = createNotifyMetrics(c.registry);
  const secret = notifySecret(config.NOTIFY_SECRET, c.jwtSecret);
  const isolation = notifyIsolation(config, c.redis);
  const settings = new NotificationSettings({
    db: c.db,
    allowPrivate: config.WEBHOOK_ALLOW_PRIVATE,
    vapidPublicKey: vapid?.publicKey ?? null,
    emailAvailable: !!config.SMTP_URL,
    breaker: isolation.breaker,
    logger: c.logger,
  });
  const bull = config.REDIS_URL ? await import('./notify-scheduler.bullmq.ts') : null;
  const scheduler: NotifyScheduler = bull
    ? new bull.BullNotifyScheduler(
        {
          connection: redisConnection(config.REDIS_URL!),
          prefix: config.REDIS_PREFIX + 'bull',
          delays: notifyDelays(config),
          attempts: config.NOTIFY_ATTEMPTS,
        },
        metrics,
        c.logger,
      )
    : new InProcessNotifier(
        notifyDeps({ config, db: c.db, store: c.store, logger: c.logger, metrics, vapid, secret, isolation, overrides: c.overrides }),
        {
          delays: notifyDelays(config),
          attempts: config.NOTIFY_ATTEMPTS,
        },
      );
  const trigger = new NotifyTrigger({ query: c.query, presence: c.presence, scheduler, logger: c.logger, delays: notifyDelays(config) });
  return {
    settings,
    trigger,
    scheduler,
    tokens: new UnsubscribeTokens(secret, config.PUBLIC_URL),
    async close() {
      // Batches still queueing are waited for a moment; with Redis away they would wait for it.
      await Promise.race([
        trigger.idle().catch((err: Error) => c.logger.warn({ err: err.message }, 'notification batches failed while closing')),
        new Promise((r) => setTimeout(r, 1000).unref()),
      ]);
      await scheduler.close();
    },
  };
}
export type Notifications = Awaited<ReturnType<typeof setupNotifications>>;
