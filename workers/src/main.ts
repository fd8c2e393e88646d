import { loadConfig } from '../../server/src/config.ts';
import { openDatabase } from '../../server/src/db/database.ts';
import { createLogger } from '../../server/src/observability/logger.ts';
import { startWorkers } from './worker.ts';
import { channels } from '../../server/src/bus/bus.ts';
import { RedisBus } from '../../server/src/bus/bus.redis.ts';
import { openPayments } from '../../server/src/payments/open-payments.ts';
import { once } from 'node:events';
import { createServer } from 'node:http';
import client from 'prom-client';
import { Redis } from 'ioredis';
import { runChecks } from '../../server/src/observability/readiness.ts';
import { openMessageStore } from '../../server/src/store/open-message-store.ts';
import { notifySecret } from '../../server/src/notify/unsubscribe-token.ts';
import { vapidKeys } from '../../server/src/notify/vapid.ts';
import { createNotifyMetrics } from '../../server/src/observability/notify-metrics.ts';
import { notifyDeps } from './notify-runner.ts';
import { connectionOf, startNotifyWorkers } from './notify-queues.ts';

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
const workers = await startWorkers({
  db: database.db,
  redisUrl: config.REDIS_URL,
  prefix: config.REDIS_PREFIX + 'bull',
  logger,
  renewals: { payments, everyMs: config.PAYMENTS_RENEW_EVERY_MS },
});
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
const notify = startNotifyWorkers(
  notifyDeps({ config, db: database.db, store, logger, metrics: notifyMetrics, vapid: vapidKeys(config, logger), secret: notifySecret(config.NOTIFY_SECRET, secret) }),
  { connection: connectionOf(config.REDIS_URL), prefix: config.REDIS_PREFIX + 'bull', concurrency: config.NOTIFY_CONCURRENCY, lockMs: config.NOTIFY_LOCK_MS },
);
const checks = [
  { name: 'database', check: () => database.ping() },
  { name: 'store', check: () => store.lastSeqs(['00000000-0000-0000-0000-000000000000']).then(() => undefined) },
  { name: 'redis', check: () => healthRedis.ping().then(() => undefined) },
];
const metricsServer = createServer((req, res) => {
  if (req.url?.startsWith('/metrics')) void registry.metrics().then((body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body));
  else if (req.url === '/health')
    void runChecks(checks).then(({ ok, checks }) => res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ok ? 'ok' : 'unavailable', checks })));
  else res.writeHead(404).end();
}).listen(config.WORKERS_METRICS_PORT, config.HOST);
logger.info({ concurrency: config.NOTIFY_CONCURRENCY, metricsPort: config.WORKERS_METRICS_PORT }, 'workers started');
const stop = async () => {
  logger.info('workers stopping');
  // worker.close() waits for running jobs and for Redis; do not outlive the grace period if Redis is gone.
  setTimeout(() => process.exit(1), 20_000).unref();
  metricsServer.close();
  healthRedis.disconnect();
  await notify.close();
  await workers.close();
  await bus.close();
  await store.close();
  await database.close();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
