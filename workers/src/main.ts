import { loadConfig } from '../../server/src/config.ts';
import { openDatabase } from '../../server/src/db/database.ts';
import { createLogger } from '../../server/src/observability/logger.ts';
import { startWorkers } from './worker.ts';
import { channels } from '../../server/src/bus/bus.ts';
import { RedisBus } from '../../server/src/bus/bus.redis.ts';
import { openPayments } from '../../server/src/payments/open-payments.ts';

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
logger.info('workers started');
const stop = async () => {
  logger.info('workers stopping');
  await workers.close();
  await bus.close();
  await database.close();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
