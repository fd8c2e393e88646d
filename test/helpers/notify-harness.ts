import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import webPush from 'web-push';
import { testConfig } from '../../server/src/config.ts';
import { openDatabase, type Database } from '../../server/src/db/database.ts';
import { notifySecret } from '../../server/src/notify/unsubscribe-token.ts';
import { createLogger } from '../../server/src/observability/logger.ts';
import { createNotifyMetrics } from '../../server/src/observability/notify-metrics.ts';
import type { Replica } from '../../server/src/replica.ts';
import { openMessageStore } from '../../server/src/store/open-message-store.ts';
import type { MessageStore } from '../../server/src/store/message-store.ts';
import { redisConnection } from '../../server/src/jobs/redis-connection.ts';
import { notifyDeps, notifyIsolation } from '../../server/src/notify/notify-deps.ts';
import { type channels, sendQueues, targetChannels, type TargetChannel } from '../../server/src/notify/notify-jobs.ts';
import type { BullNotifyScheduler } from '../../server/src/notify/notify-scheduler.bullmq.ts';
import { sendDispatch, startNotifyWorkers } from '../../server/src/notify/notify-worker.bullmq.ts';
import { PushService, resolveLocalhostNames, selfSigned, SmtpSink, WebhookReceiver } from './notify-services.ts';
import { sharedSecret, startTestReplica, testEnv, type TestEnv } from './server.ts';

/**
 * A hub replica on real PostgreSQL and Redis producing BullMQ jobs, notification workers in
 * this process consuming them (as `npm run workers` does, with the test's CA, clock and
 * resolver for names under `.localhost`), and the real far ends, reached by host name over TLS
 * through the SSRF guard. Time is the test's: jobs wait for `settle()`, which promotes every
 * delayed job (the delay "passes") and waits until the queues are idle; quiet hours read `clock`.
 */
export async function notifyHarness(overrides: Record<string, string> = {}) {
  const tls = selfSigned(['push.localhost', 'hooks.localhost']);
  const vapid = webPush.generateVAPIDKeys();
  const push = await new PushService(tls, vapid.publicKey).start();
  const smtp = await new SmtpSink().start();
  const hooks = await new WebhookReceiver(tls).start();
  const te: TestEnv = await testEnv('postgres', { redis: true });
  const env: Record<string, string> = {
    ...te.env,
    VAPID_PUBLIC_KEY: vapid.publicKey,
    VAPID_PRIVATE_KEY: vapid.privateKey,
    VAPID_SUBJECT: 'mailto:ops@hubbub.test',
    SMTP_URL: smtp.url,
    SMTP_FROM: 'Hubbub <notify@hubbub.test>',
    PUBLIC_URL: 'https://chat.hubbub.test',
    WEBHOOK_ALLOW_PRIVATE: 'true',
    NOTIFY_PUSH_DELAY_MS: '60000',
    NOTIFY_ATTEMPTS: '3',
    ...overrides,
  };
  const replica: Replica = await startTestReplica(env);
  const config = testConfig(env);
  const logger = createLogger({ level: 'silent', replicaId: 'notify-worker' });
  const database: Database = await openDatabase({ databaseUrl: env.DATABASE_URL!, dataDir: 'unused' });
  const store: MessageStore = await openMessageStore(config, database, logger);
  const clock = { now: new Date() };
  const redis = new Redis(env.REDIS_URL!);
  const metrics = createNotifyMetrics(new Registry());
  const deps = notifyDeps({
    config,
    db: database.db,
    store,
    logger,
    metrics,
    vapid: { ...vapid, subject: env.VAPID_SUBJECT! },
    secret: notifySecret(undefined, sharedSecret),
    isolation: notifyIsolation(config, redis),
    overrides: { ca: tls.cert, now: () => clock.now, lookup: resolveLocalhostNames },
  });
  const connection = redisConnection(env.REDIS_URL!);
  const prefix = env.REDIS_PREFIX! + 'bull';
  const workerOptions = { connection, prefix, concurrency: 4, lockMs: config.NOTIFY_LOCK_MS, attempts: config.NOTIFY_ATTEMPTS };
  let workers = startNotifyWorkers(deps, workerOptions);
  const scheduler = replica.notifications.scheduler as BullNotifyScheduler;
  const sends = Object.fromEntries(targetChannels.map((c) => [c, new Queue(sendQueues[c], { connection, prefix })])) as Record<
    TargetChannel,
    Queue
  >;
  const allQueues = [...Object.values(scheduler.queues), ...Object.values(sends)];

  const counts = async () => {
    let busy = 0;
    for (const q of allQueues) {
      const n = await q.getJobCounts('waiting', 'active', 'prioritized');
      busy += (n.waiting ?? 0) + (n.active ?? 0) + (n.prioritized ?? 0);
    }
    return busy;
  };

  return {
    env,
    tls,
    vapid,
    replica,
    port: replica.port,
    push,
    smtp,
    hooks,
    clock,
    deps,
    metrics,
    database,
    scheduler,
    connection,
    prefix,
    /** Waits for the trigger's batches to be queued (nothing is run). */
    async queued() {
      await replica.notifications.trigger.idle();
    },
    /**
     * Lets every delay pass: promotes the delayed jobs (notification jobs, then the send jobs
     * they made, and the retries of earlier ones) and waits until the queues are idle.
     */
    async settle(timeoutMs = 15_000) {
      await replica.notifications.trigger.idle();
      replica.notifications.trigger.forgetPending();
      const deadline = Date.now() + timeoutMs;
      for (const q of allQueues) await q.promoteJobs();
      // Redis holds the queue state: it is read until no job is waiting or running.
      while ((await counts()) > 0) {
        if (Date.now() > deadline) throw new Error('notification queues did not settle');
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    /** Delayed notification jobs of a channel. */
    async delayed(channel: (typeof channels)[number]) {
      return scheduler.queues[channel].getJobs(['delayed']);
    },
    /** How the workers hand claimed deliveries to send jobs (the same queues and options). */
    dispatch: sendDispatch(sends, config.NOTIFY_ATTEMPTS),
    /** Send jobs of a channel in these states. */
    async sendJobs(channel: TargetChannel, states: ('waiting' | 'delayed' | 'completed')[]) {
      return sends[channel].getJobs(states);
    },
    /** Delayed send jobs (retries) of a channel. */
    async delayedSends(channel: TargetChannel) {
      return sends[channel].getJobs(['delayed']);
    },
    async stopWorkers() {
      await workers.close();
    },
    startWorkers() {
      workers = startNotifyWorkers(deps, workerOptions);
    },
    async close() {
      await workers.close();
      await Promise.all(Object.values(sends).map((q) => q.close()));
      redis.disconnect();
      await replica.stop();
      await store.close();
      await database.close();
      await Promise.all([push.close(), smtp.close(), hooks.close()]);
      await te.cleanup();
    },
  };
}
export type NotifyHarness = Awaited<ReturnType<typeof notifyHarness>>;
