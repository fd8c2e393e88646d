import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { Config } from './config.ts';
import { appRouter } from './api/root.ts';
import type { ApiServices } from './api/services.ts';
import { AccountService } from './account/account-service.ts';
import { AuthService } from './auth/auth-service.ts';
import { PasswordHasher } from './auth/passwords.ts';
import { MemoryRateLimiter } from './limits/rate-limiter.memory.ts';
import type { RateLimiter } from './limits/rate-limiter.ts';
import { SocketAuthenticator } from './auth/socket-authenticator.ts';
import { AccessTokens } from './auth/tokens.ts';
import type { Bus } from './bus/bus.ts';
import { MemoryBus } from './bus/bus.memory.ts';
import { ConversationService } from './conversations/conversation-service.ts';
import { openDatabase, type Database } from './db/database.ts';
import { HttpServer, type ReadinessCheck } from './http/app.ts';
import { Hub } from './hub/hub.ts';
import { MemoryPresence } from './presence/presence.memory.ts';
import type { Presence } from './presence/presence.ts';
import { wsBehavior, wsUpgradeFallback } from './hub/ws-handler.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { createMetrics } from './observability/metrics.ts';
import { startMetricsServer } from './observability/metrics-server.ts';
import { ProfileService } from './profiles/profile-service.ts';
import { openMessageStore } from './store/open-message-store.ts';
import { openPayments } from './payments/open-payments.ts';
import { registerStripeWebhook } from './http/stripe-webhook.ts';
import { workBudgets } from './limits/budgets.ts';
import { maintenanceJob } from './auth/maintenance-job.ts';
import { renewalsJob } from './payments/renewals-job.ts';
import { runRepeatingJobs } from './jobs/repeating-job.inprocess.ts';
import { pageUrl } from './http/page-url.ts';
import { setupNotifications, type Notifications } from './notify/setup-notifications.ts';
import type { NotifyOverrides } from './notify/notify-deps.ts';
import { registerUnsubscribeRoute } from './notify/unsubscribe-route.ts';
import { AttachmentService } from './attachments/attachment-service.ts';
import { attachmentCleanupJob } from './attachments/attachment-data.ts';
import { openBlobStore } from './attachments/open-blob-store.ts';
import { registerFileRoutes } from './attachments/file-routes.ts';

export interface Replica {
  port: number;
  /** Where /metrics is served (METRICS_PORT), apart from the public port. */
  metricsPort: number;
  replicaId: string;
  logger: Logger;
  database: Database;
  hub: Hub;
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
 * with their own (port 0).
 */
export async function startReplica(config: Config, opts: { logger?: Logger; notify?: NotifyOverrides } = {}): Promise<Replica> {
  const replicaId = config.REPLICA_ID ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const logger = opts.logger ?? createLogger({ level: config.LOG_LEVEL, replicaId });
  const metrics = createMetrics({ collectDefault: config.NODE_ENV !== 'test' });

  const database = await openDatabase({
    databaseUrl: config.DATABASE_URL,
    dataDir: config.DATA_DIR,
    poolMax: config.DATABASE_POOL_MAX,
  });
  await database.migrate();
  const db = database.db;
  const store = await openMessageStore(config, database, logger);

  let redis: Redis | null = null;
  let bus: Bus;
  let presence: Presence;
  let limiter: RateLimiter;
  if (config.REDIS_URL) {
    // Loaded only with Redis: a single replica without it never loads ioredis.
    const [{ Redis }, { RedisBus }, { RedisPresence }, { RedisRateLimiter }] = await Promise.all([
      import('ioredis'),
      import('./bus/bus.redis.ts'),
      import('./presence/presence.redis.ts'),
      import('./limits/rate-limiter.redis.ts'),
    ]);
    // Commands fail fast while Redis is away instead of queueing without bound. Auto-pipelining:
    // the presence scripts and rate-limit hits of one loop turn (a connect storm brings hundreds)
    // leave in one write.
    redis = new Redis(config.REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1, enableAutoPipelining: true });
    redis.on('error', (err) => logger.warn({ err: err.message }, 'redis error'));
    await new Promise<void>((res, rej) => {
      redis!.once('ready', () => res());
      redis!.once('end', () => rej(new Error('redis connection ended')));
    });
    const redisBus = new RedisBus(config.REDIS_URL, { logger, prefix: config.REDIS_PREFIX });
    await redisBus.ready();
    bus = redisBus;
    presence = new RedisPresence(redis, { replicaId, logger, prefix: config.REDIS_PREFIX });
    limiter = new RedisRateLimiter(redis, config.REDIS_PREFIX + 'rl:');
  } else {
    bus = new MemoryBus();
    presence = new MemoryPresence();
    limiter = new MemoryRateLimiter();
  }

  const profiles = new ProfileService(db, { controlUsers: (users, m) => hub.controlUsers(users, m) });
  const budgets = workBudgets(config);
  let hubRef: Hub | null = null;
  const secret = jwtSecret(config, logger);
  const tokens = new AccessTokens(secret, {
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    ttlSeconds: config.ACCESS_TOKEN_TTL_S,
  });
  const hasher = new PasswordHasher({
    memoryCost: config.ARGON2_MEMORY_KIB,
    timeCost: config.ARGON2_TIME_COST,
    nice: config.PASSWORD_HASH_NICE,
  });
  const auth = new AuthService({
    db,
    database,
    hasher,
    tokens,
    limiter,
    logger,
    refreshTtlSeconds: config.REFRESH_TOKEN_TTL_S,
    reuseGraceMs: config.REFRESH_REUSE_GRACE_MS,
    loginLimits: { perAccount: config.LOGIN_MAX_PER_ACCOUNT, perIp: config.LOGIN_MAX_PER_IP, windowMs: config.LOGIN_WINDOW_S * 1000 },
    onRevoke: (r) => {
      void hubRef?.controlUser(r.userId, { k: 'revoke', sessions: r.sessionIds }).catch((err) => {
        logger.error({ err: (err as Error).message }, 'session revocation broadcast failed');
      });
    },
  });

  const pay = openPayments(config, {
    db,
    database,
    logger,
    metrics,
    controlUser: (u, m) => hub.controlUser(u, m),
    writeEvent: (conv, draft) => hub.writer.write(conv, draft),
  });
  const conversations: ConversationService = new ConversationService({
    db,
    database,
    store,
    profiles,
    maxGroupMembers: config.MAX_GROUP_MEMBERS,
    limitsOf: (u) => pay.entitlements.conversationLimitsOf(u),
    live: {
      write: (conv, draft) => hub.writer.write(conv, draft),
      controlUsers: (users, m) => hub.controlUsers(users, m),
      publishFrame: (c, f, skip) => hub.publishFrame(c, f, skip),
    },
  });
  const notifications = await setupNotifications({
    config,
    db,
    query: database.query,
    store,
    presence,
    logger,
    registry: metrics.registry,
    jwtSecret: secret,
    redis,
    overrides: opts.notify,
  });
  const blobs = await openBlobStore(config);
  const attachments = new AttachmentService({
    db,
    blobs,
    logger,
    secret,
    limitsOf: async (u) => (await pay.entitlements.of(u)).limits,
    uploads: config.ATTACHMENT_UPLOADS,
    uploadTtlS: config.ATTACHMENT_UPLOAD_TTL_S,
    linkTtlS: config.ATTACHMENT_LINK_TTL_S,
    storeUrlTtlS: config.ATTACHMENT_STORE_URL_TTL_S,
    maxPixels: config.ATTACHMENT_MAX_PIXELS,
  });
  const hub: Hub = new Hub({
    attachments,
    notify: config.NOTIFY_ENABLED ? notifications.trigger : undefined,
    store,
    bus,
    presence,
    directory: conversations,
    logger,
    metrics,
    userLimits: pay.entitlements,
    limits: {
      maxBodyChars: config.WS_MAX_BODY_CHARS,
      ratePerS: config.WS_RATE_PER_S,
      burst: config.WS_RATE_BURST,
      maxConnectionsPerUser: config.WS_MAX_CONNECTIONS_PER_USER,
      heartbeatMs: config.WS_HEARTBEAT_MS,
      maxBuffered: config.WS_MAX_BACKPRESSURE_BYTES,
      resumeMaxEvents: config.WS_RESUME_MAX_EVENTS,
      resumeHoldMs: config.WS_RESUME_HOLD_MS,
      announcedResumeHoldMs: config.WS_RESUME_ANNOUNCED_HOLD_MS,
      presenceGraceMs: config.PRESENCE_OFFLINE_GRACE_MS,
    },
    resumeEvents: budgets.resumeEvents,
  });
  hubRef = hub;
  // A member with a socket here is online without a presence lookup.
  notifications.trigger.localOnline = (userId) => hub.hasSocketsOf(userId);
  const account = new AccountService({ db, auth, profiles, conversations, store, payments: pay.payments, attachments });
  const services: ApiServices = {
    auth,
    profiles,
    account,
    conversations,
    payments: pay.payments,
    metrics,
    budgets,
    notifications: notifications.settings,
    attachments,
  };

  const checks: ReadinessCheck[] = [
    { name: 'database', check: () => database.ping() },
    { name: 'store', check: () => store.lastSeqs(['00000000-0000-0000-0000-000000000000']).then(() => undefined) },
  ];
  if (redis) checks.push({ name: 'redis', check: () => redis!.ping().then(() => undefined) });

  const allowedOrigins = new Set(config.ALLOWED_ORIGINS);
  const http = new HttpServer({
    router: appRouter,
    services,
    logger,
    http: {
      allowedOrigins,
      maxBodyBytes: config.MAX_BODY_BYTES,
      trustProxy: config.TRUST_PROXY,
      maxUrlBytes: config.HTTP_MAX_URL_BYTES,
      maxHeaderBytes: config.HTTP_MAX_HEADER_BYTES,
      maxBatchCalls: config.API_MAX_BATCH_CALLS,
    },
    checks,
    extend: (app) => {
      registerUnsubscribeRoute(app, { tokens: notifications.tokens, settings: notifications.settings, logger });
      registerFileRoutes(app, { attachments, logger });
      app.ws(
        '/ws',
        wsBehavior({
          hub,
          auth: new SocketAuthenticator({ tokens, database }),
          logger,
          metrics,
          allowedOrigins,
          maxFrameBytes: config.WS_MAX_FRAME_BYTES,
          idleTimeoutS: Math.ceil((config.WS_HEARTBEAT_MS + config.WS_PONG_TIMEOUT_MS) / 1000),
          maxBackpressure: config.WS_MAX_BACKPRESSURE_BYTES,
          maxUrlBytes: config.HTTP_MAX_URL_BYTES,
          maxHeaderBytes: config.HTTP_MAX_HEADER_BYTES,
        }),
      );
      registerStripeWebhook(app, { webhooks: pay.webhooks, maxBytes: config.STRIPE_WEBHOOK_MAX_BYTES, logger });
      app.get('/ws', wsUpgradeFallback);
    },
  });
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
          maintenanceJob(db),
          renewalsJob({ payments: pay.payments, everyMs: config.PAYMENTS_RENEW_EVERY_MS }),
          attachmentCleanupJob({ db, blobs, everyMs: config.ATTACHMENT_CLEANUP_EVERY_MS, uploadTtlS: config.ATTACHMENT_UPLOAD_TTL_S }),
        ],
        logger,
      );

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
    await hasher.close().catch(failed('password hasher'));
    await presence.close().catch(failed('presence'));
    await bus.close().catch(failed('bus'));
    redis?.disconnect();
    if ('close' in limiter && typeof limiter.close === 'function') limiter.close();
    await store.close().catch(failed('message store'));
    await blobs.close().catch(failed('blob store'));
    await database.close().catch(failed('database'));
  };

  return {
    port,
    metricsPort: metricsServer.port,
    replicaId,
    logger,
    database,
    hub,
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

/**
 * JWT_SECRET from the environment; in development one is generated once and kept in DATA_DIR
 * (so tokens survive a restart); in tests a random one per process unless given.
 */
function jwtSecret(config: Config, logger: Logger): string {
  if (config.JWT_SECRET) return config.JWT_SECRET;
  if (config.NODE_ENV === 'test') return randomBytes(32).toString('base64url');
  const file = path.resolve(config.DATA_DIR, 'jwt-secret');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    mkdirSync(config.DATA_DIR, { recursive: true });
    const secret = randomBytes(48).toString('base64url');
    writeFileSync(file, secret + '\n', { mode: 0o600 });
    logger.info({ file }, 'generated a development JWT secret');
    return secret;
  }
}
