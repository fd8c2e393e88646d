import type { Redis } from 'ioredis';
import { appRouter } from '../api/root.ts';
import type { ApiServices } from '../api/services.ts';
import { SocketAuthenticator } from '../auth/socket-authenticator.ts';
import type { AccessTokens } from '../auth/tokens.ts';
import type { Config } from '../config.ts';
import type { Database } from '../db/database.ts';
import { HttpServer, type ReadinessCheck } from '../http/app.ts';
import { registerStripeWebhook } from '../http/stripe-webhook.ts';
import type { Hub } from '../hub/hub.ts';
import { wsBehavior, wsUpgradeFallback } from '../hub/ws-handler.ts';
import type { Notifications } from '../notify/setup-notifications.ts';
import { registerUnsubscribeRoute } from '../notify/unsubscribe-route.ts';
import { registerFileRoutes } from '../attachments/file-routes.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { StripeWebhooks } from '../payments/webhooks.ts';
import type { MessageStore } from '../store/message-store.ts';

/**
 * The public HTTP surface: tRPC and the health checks, the WebSocket endpoint into the hub, the
 * Stripe webhook, the unsubscribe link and the file links. Not listening yet.
 */
export function buildHttp(
  config: Config,
  d: {
    services: ApiServices;
    hub: Hub;
    tokens: AccessTokens;
    database: Database;
    store: MessageStore;
    redis: Redis | null;
    webhooks: StripeWebhooks;
    notifications: Notifications;
    logger: Logger;
    metrics: Metrics;
  },
): HttpServer {
  const { logger } = d;
  const allowedOrigins = new Set(config.ALLOWED_ORIGINS);
  return new HttpServer({
    router: appRouter,
    services: d.services,
    logger,
    http: {
      allowedOrigins,
      maxBodyBytes: config.MAX_BODY_BYTES,
      trustProxy: config.TRUST_PROXY,
      maxUrlBytes: config.HTTP_MAX_URL_BYTES,
      maxHeaderBytes: config.HTTP_MAX_HEADER_BYTES,
      maxBatchCalls: config.API_MAX_BATCH_CALLS,
    },
    checks: readinessChecks(d),
    extend: (app) => {
      registerUnsubscribeRoute(app, { tokens: d.notifications.tokens, settings: d.notifications.settings, logger });
      registerFileRoutes(app, { attachments: d.services.attachments, logger });
      app.ws(
        '/ws',
        wsBehavior({
          hub: d.hub,
          auth: new SocketAuthenticator({ tokens: d.tokens, database: d.database }),
          logger,
          metrics: d.metrics,
          allowedOrigins,
          maxFrameBytes: config.WS_MAX_FRAME_BYTES,
          idleTimeoutS: Math.ceil((config.WS_HEARTBEAT_MS + config.WS_PONG_TIMEOUT_MS) / 1000),
          maxBackpressure: config.WS_MAX_BACKPRESSURE_BYTES,
          maxUrlBytes: config.HTTP_MAX_URL_BYTES,
          maxHeaderBytes: config.HTTP_MAX_HEADER_BYTES,
        }),
      );
      registerStripeWebhook(app, { webhooks: d.webhooks, maxBytes: config.STRIPE_WEBHOOK_MAX_BYTES, logger });
      app.get('/ws', wsUpgradeFallback);
    },
  });
}

/** What /health/ready asks: the database, the message store, and Redis when there is one. */
function readinessChecks(d: { database: Database; store: MessageStore; redis: Redis | null }): ReadinessCheck[] {
  const { database, store, redis } = d;
  const checks: ReadinessCheck[] = [
    { name: 'database', check: () => database.ping() },
    { name: 'store', check: () => store.lastSeqs(['00000000-0000-0000-0000-000000000000']).then(() => undefined) },
  ];
  if (redis) checks.push({ name: 'redis', check: () => redis.ping().then(() => undefined) });
  return checks;
}
