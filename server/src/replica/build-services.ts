import type { Redis } from 'ioredis';
import { AccountService } from '../account/account-service.ts';
import type { ApiServices } from '../api/services.ts';
import type { Config } from '../config.ts';
import { ConversationService } from '../conversations/conversation-service.ts';
import type { Database } from '../db/database.ts';
import { workBudgets } from '../limits/budgets.ts';
import type { RateLimiter } from '../limits/rate-limiter.ts';
import type { NotifyOverrides } from '../notify/notify-deps.ts';
import { setupNotifications } from '../notify/setup-notifications.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { openPayments } from '../payments/open-payments.ts';
import type { Presence } from '../presence/presence.ts';
import { ProfileService } from '../profiles/profile-service.ts';
import type { MessageStore } from '../store/message-store.ts';
import { AttachmentService } from '../attachments/attachment-service.ts';
import { openBlobStore } from '../attachments/open-blob-store.ts';
import { openSearch } from '../search/open-search.ts';
import { SearchService } from '../search/search-service.ts';
import { buildAuth } from './build-auth.ts';
import type { HubLink } from './hub-link.ts';

/**
 * The domain services the API calls (auth, profiles, conversations, payments, account,
 * notification settings, search), and the parts of them that others wire: the token signer for
 * sockets, the payment webhooks, the notification trigger and the search indexer for the hub.
 */
export async function buildServices(
  config: Config,
  d: {
    database: Database;
    store: MessageStore;
    presence: Presence;
    limiter: RateLimiter;
    redis: Redis | null;
    logger: Logger;
    metrics: Metrics;
    /** Live sockets, reached through the hub once it is built. */
    hub: HubLink;
    notify?: NotifyOverrides;
  },
) {
  const { database, store, logger, metrics, hub } = d;
  const db = database.db;
  const { auth, tokens, hasher, jwtSecret } = buildAuth(config, { database, limiter: d.limiter, logger, controlUser: hub.controlUser });
  const profiles = new ProfileService(db, { controlUsers: hub.controlUsers });
  const pay = openPayments(config, { db, database, logger, metrics, controlUser: hub.controlUser, writeEvent: hub.write });
  const conversations = new ConversationService({
    db,
    database,
    store,
    profiles,
    maxGroupMembers: config.MAX_GROUP_MEMBERS,
    limitsOf: (u) => pay.entitlements.conversationLimitsOf(u),
    live: hub,
  });
  const notifications = await setupNotifications({
    config,
    db,
    query: database.query,
    store,
    presence: d.presence,
    logger,
    registry: metrics.registry,
    jwtSecret,
    redis: d.redis,
    overrides: d.notify,
  });
  const searchParts = await openSearch(config, database, logger);
  // Files on messages: bytes on disk under DATA_DIR, or in S3 when S3_ENDPOINT is set.
  const blobs = await openBlobStore(config);
  const attachments = new AttachmentService({
    db,
    blobs,
    logger,
    secret: jwtSecret,
    limitsOf: async (u) => (await pay.entitlements.of(u)).limits,
    uploads: config.ATTACHMENT_UPLOADS,
    uploadTtlS: config.ATTACHMENT_UPLOAD_TTL_S,
    linkTtlS: config.ATTACHMENT_LINK_TTL_S,
    storeUrlTtlS: config.ATTACHMENT_STORE_URL_TTL_S,
    maxPixels: config.ATTACHMENT_MAX_PIXELS,
  });
  const account = new AccountService({
    db,
    auth,
    profiles,
    conversations,
    store,
    payments: pay.payments,
    search: searchParts.search,
    attachments,
  });
  const search = new SearchService({
    db,
    search: searchParts.search,
    historyDepthOf: async (u) => (await pay.entitlements.conversationLimitsOf(u)).historyDepth,
  });
  const services: ApiServices = {
    auth,
    profiles,
    account,
    conversations,
    payments: pay.payments,
    metrics,
    budgets: workBudgets(config),
    notifications: notifications.settings,
    search,
    attachments,
  };
  return { services, conversations, pay, notifications, tokens, hasher, searchIndexer: searchParts.indexer, blobs };
}
