import { Redis } from 'ioredis';
import client from 'prom-client';
import { maintenanceJob } from '../../server/src/auth/maintenance-job.ts';
import { channels } from '../../server/src/bus/bus.ts';
import { RedisBus } from '../../server/src/bus/bus.redis.ts';
import { loadConfig } from '../../server/src/config.ts';
import { openDatabase } from '../../server/src/db/database.ts';
import { redisConnection } from '../../server/src/jobs/redis-connection.ts';
import { startRepeatingJobs } from '../../server/src/jobs/repeating-job.bullmq.ts';
import { notifyDeps, notifyIsolation } from '../../server/src/notify/notify-deps.ts';
import { startNotifyWorkers } from '../../server/src/notify/notify-worker.bullmq.ts';
import { once } from 'node:events';
import { runChecks } from '../../server/src/observability/readiness.ts';
import { notifySecret } from '../../server/src/notify/unsubscribe-token.ts';
import { vapidKeys } from '../../server/src/notify/vapid.ts';
import { createLogger } from '../../server/src/observability/logger.ts';
import { startMetricsServer } from '../../server/src/observability/metrics-server.ts';
import { createNotifyMetrics, registerQueueDepth } from '../../server/src/observability/notify-metrics.ts';
import { BullNotifyScheduler } from '../../server/src/notify/notify-scheduler.bullmq.ts';
import { notifyDelays } from '../../server/src/notify/setup-notifications.ts';
import { openPayments } from '../../server/src/payments/open-payments.ts';
import { renewalsJob } from '../../server/src/payments/renewals-job.ts';
import { attachmentCleanupJob } from '../../server/src/attachments/attachment-data.ts';
import { openBlobStore } from '../../server/src/attachments/open-blob-store.ts';
import { openMessageStore } from '../../server/src/store/open-message-store.ts';

/**
 * `npm run workers`: the composition root of a worker process (scaled apart from the hubs).
 * BullMQ needs Redis; without REDIS_URL the hub runs the same processors in-process instead.
 */
const config = loadConfig();
const logger = createLogger({ level: config.LOG_LEVEL, replicaId: config.REPLICA_ID ?? `worker-${process.pid}`, name: 'workers' });
if (!config.REDIS_URL) {
  logger.error('REDIS_URL is not set: without Redis the hub runs background jobs in-process, no worker is needed');
  process.exit(78);
}
const database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR, poolMax: config.DATABASE_POOL_MAX });
await database.migrate();
// Renewals tell the hubs about limit changes on the users' bus channels, as a hub would.
const bus = new RedisBus(config.REDIS_URL, { logger, prefix: config.REDIS_PREFIX });
await bus.ready();
// /health answers from what the workers need (below): a worker that cannot reach Redis or its
// stores does no work, so it reports 503 and its orchestrator restarts or flags it. Connected
// before the workers start, so a first /health does not find it still connecting.
const healthRedis = new Redis(config.REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
healthRedis.on('error', (err) => logger.warn({ err: err.message }, 'redis error (health check connection)'));
await once(healthRedis, 'ready');
const { payments } = openPayments(config, {
  db: database.db,
  database,
  logger,
  controlUser: (u, m) => bus.publish(channels.user(u), JSON.stringify(m)),
  writeEvent: () => Promise.reject(new Error('workers write no conversation events')),
});
const connection = redisConnection(config.REDIS_URL);
const prefix = config.REDIS_PREFIX + 'bull';
// Multi-replica deployments keep attachments in S3; on disk the workers must share DATA_DIR.
const blobs = await openBlobStore(config);
const workers = await startRepeatingJobs(
  [
    maintenanceJob(database.db),
    renewalsJob({ payments, everyMs: config.PAYMENTS_RENEW_EVERY_MS }),
    attachmentCleanupJob({
      db: database.db,
      blobs,
      everyMs: config.ATTACHMENT_CLEANUP_EVERY_MS,
      uploadTtlS: config.ATTACHMENT_UPLOAD_TTL_S,
    }),
  ],
  { connection, prefix, logger },
);
// Notifications: the unsubscribe links must verify on the hubs, so the key is shared config.
const secret = config.NOTIFY_SECRET ?? config.JWT_SECRET;
if (!secret) {
  logger.error('NOTIFY_SECRET or JWT_SECRET must be set for the workers (the hubs verify the unsubscribe links they sign)');
  process.exit(78);
}
const store = await openMessageStore(config, database, logger);
const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry, prefix: 'hubbub_' });
const notifyMetrics = createNotifyMetrics(registry);
// The endpoint breakers and user shares, shared by every worker. Commands fail after one retry
// rather than wait for Redis: the job fails and BullMQ retries it.
const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1 });
redis.on('error', (err) => logger.warn({ err: err.message }, 'redis error'));
const notify = startNotifyWorkers(
  notifyDeps({
    config,
    db: database.db,
    store,
    logger,
    metrics: notifyMetrics,
    vapid: vapidKeys(config, logger),
    secret: notifySecret(config.NOTIFY_SECRET, secret),
    isolation: notifyIsolation(config, redis),
  }),
  { connection, prefix, concurrency: config.NOTIFY_CONCURRENCY, lockMs: config.NOTIFY_LOCK_MS, attempts: config.NOTIFY_ATTEMPTS },
);
// The queues' depth is exported here only (not by the hubs): see registerQueueDepth.
const counted = new BullNotifyScheduler(
  { connection, prefix, delays: notifyDelays(config), attempts: config.NOTIFY_ATTEMPTS },
  undefined,
  logger,
);
registerQueueDepth(registry, () => counted.depth());
const checks = [
  { name: 'database', check: () => database.ping() },
  { name: 'store', check: () => store.lastSeqs(['00000000-0000-0000-0000-000000000000']).then(() => undefined) },
  { name: 'redis', check: () => healthRedis.ping().then(() => undefined) },
];
const metricsServer = await startMetricsServer({
  registry,
  host: config.HOST,
  port: config.WORKERS_METRICS_PORT,
  setting: 'WORKERS_METRICS_PORT',
  logger,
  health: async () => {
    const r = await runChecks(checks);
    return { ok: r.ok, body: { status: r.ok ? 'ok' : 'unavailable', checks: r.checks } };
  },
});
logger.info({ concurrency: config.NOTIFY_CONCURRENCY, metricsPort: metricsServer.port }, 'workers started');
const stop = async () => {
  logger.info('workers stopping');
  // worker.close() waits for running jobs and for Redis; do not outlive the grace period if Redis is gone.
  setTimeout(() => process.exit(1), 20_000).unref();
  await metricsServer.close();
  healthRedis.disconnect();
  await notify.close();
  await counted.close();
  await workers.close();
  redis.disconnect();
  await bus.close();
  await store.close();
  await blobs.close();
  await database.close();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
