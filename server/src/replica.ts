import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Config } from './config.ts';
import type { ApiServices } from './api/services.ts';
import type { Database } from './db/database.ts';
import type { HttpServer } from './http/app.ts';
import type { Hub } from './hub/hub.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { createMetrics } from './observability/metrics.ts';
import { startMetricsServer } from './observability/metrics-server.ts';
import { maintenanceJob } from './auth/maintenance-job.ts';
import { renewalsJob } from './payments/renewals-job.ts';
import { runRepeatingJobs } from './jobs/repeating-job.inprocess.ts';
import { attachmentCleanupJob } from './attachments/attachment-data.ts';
import { pageUrl } from './http/page-url.ts';
import type { Notifications } from './notify/setup-notifications.ts';
import type { NotifyOverrides } from './notify/notify-deps.ts';
import type { SearchIndexer } from './search/message-search.ts';
import { openStorage } from './replica/open-storage.ts';
import { openCoordination } from './replica/open-coordination.ts';
import { HubLink } from './replica/hub-link.ts';
import { buildServices } from './replica/build-services.ts';
import { buildHub } from './replica/build-hub.ts';
import { buildHttp } from './replica/build-http.ts';

export interface Replica {
  port: number;
  /** Where /metrics is served (METRICS_PORT), apart from the public port. */
  metricsPort: number;
  replicaId: string;
  logger: Logger;
  database: Database;
  hub: Hub;
  /** The search index's writer (tests flush it). */
  searchIndexer: SearchIndexer;
  services: ApiServices;
  http: HttpServer;
  notifications: Notifications;
  /** SIGTERM path: not ready, stop accepting, finish writes, 1012 to clients, close everything. */
  drain(): Promise<void>;
  /** Immediate stop (tests): closes sockets and connections without waiting. */
  stop(): Promise<void>;
}

/**
 * The composition root of a hub replica: builds every dependency from the config, once, and
 * passes narrow objects down. `main.ts` calls it with the environment's config; tests call it
 * with their own (port 0). Each part is built by a function in `replica/`.
 */
export async function startReplica(config: Config, opts: { logger?: Logger; notify?: NotifyOverrides } = {}): Promise<Replica> {
  const replicaId = config.REPLICA_ID ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const logger = opts.logger ?? createLogger({ level: config.LOG_LEVEL, replicaId });
  const metrics = createMetrics({ collectDefault: config.NODE_ENV !== 'test' });

  // Storage, then what replicas share (bus, presence, rate limits: Redis, or memory alone).
  const { database, store } = await openStorage(config, logger);
  const { redis, bus, presence, limiter } = await openCoordination(config, replicaId, logger);

  // The services reach live sockets through the hub, and the hub reads memberships and plans from them.
  const hubLink = new HubLink();
  const { services, conversations, pay, notifications, tokens, hasher, searchIndexer, blobs } = await buildServices(config, {
    database,
    store,
    presence,
    limiter,
    redis,
    logger,
    metrics,
    hub: hubLink,
    notify: opts.notify,
  });
  const hub = buildHub(config, {
    store,
    bus,
    presence,
    directory: conversations.directory,
    userLimits: pay.entitlements,
    resumeEvents: services.budgets.resumeEvents,
    notify: notifications.trigger,
    indexer: searchIndexer,
    attachments: services.attachments,
    logger,
    metrics,
  });
  hubLink.bind(hub);
  // A member with a socket here is online without a presence lookup.
  notifications.trigger.localOnline = (userId) => hub.hasSocketsOf(userId);

  // The public port (API, sockets, webhooks) and the metrics port.
  const http = buildHttp(config, { services, hub, tokens, database, store, redis, webhooks: pay.webhooks, notifications, logger, metrics });
  const metricsServer = await startMetricsServer({
    registry: metrics.registry,
    host: config.HOST,
    port: config.METRICS_PORT,
    setting: 'METRICS_PORT',
    logger,
  });
  const port = await http.listen(config.HOST, config.PORT);
  logger.info(
    {
      port,
      metricsPort: metricsServer.port,
      host: config.HOST,
      url: pageUrl(config.HOST, port, config.ALLOWED_ORIGINS).url,
      db: database.kind,
      store: config.MESSAGE_STORE,
      bus: redis ? 'redis' : 'memory',
    },
    'hub listening',
  );

  // Without Redis there is no BullMQ: the same jobs run in-process, so `npm start` alone has them.
  const inProcessJobs = redis
    ? null
    : runRepeatingJobs(
        [
          maintenanceJob(database.db),
          renewalsJob({ payments: pay.payments, everyMs: config.PAYMENTS_RENEW_EVERY_MS }),
          attachmentCleanupJob({
            db: database.db,
            blobs,
            everyMs: config.ATTACHMENT_CLEANUP_EVERY_MS,
            uploadTtlS: config.ATTACHMENT_UPLOAD_TTL_S,
          }),
        ],
        logger,
      );

  // In order: no more jobs and scrapes, the hub's timers, then queues, bus, stores, pools.
  let closed = false;
  const closeAll = async () => {
    if (closed) return;
    closed = true;
    inProcessJobs?.close();
    await metricsServer.close();
    hub.stop();
    // A part that fails to close is logged and the rest still close.
    const failed = (part: string) => (err: Error) => logger.warn({ err: err.message, part }, 'closing a part failed');
    await notifications.close().catch(failed('notifications'));
    await searchIndexer.close().catch(failed('search indexer'));
    await hasher.close().catch(failed('password hasher'));
    await presence.close().catch(failed('presence'));
    await bus.close().catch(failed('bus'));
    redis?.disconnect();
    limiter.close?.();
    await blobs.close().catch(failed('blob store'));
    await store.close().catch(failed('message store'));
    await database.close().catch(failed('database'));
  };

  return {
    port,
    metricsPort: metricsServer.port,
    replicaId,
    logger,
    database,
    hub,
    searchIndexer,
    services,
    http,
    notifications,
    async drain() {
      http.draining = true;
      http.stopListening();
      await hub.drain(config.DRAIN_TIMEOUT_MS);
      await closeAll();
    },
    async stop() {
      http.draining = true;
      http.stopListening();
      await hub.drain(0);
      await closeAll();
    },
  };
}
