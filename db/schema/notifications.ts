import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import { conversations } from './conversations.ts';
import { users } from './users.ts';

/** A user's notification settings; no row means the defaults (everything on, no quiet hours). */
export const notificationSettings = pgTable(
  'notification_settings',
  {
    userId: uuid('user_id')
      .primaryKey()
      .references(() => users.id, { onDelete: 'cascade' }),
    push: boolean('push').notNull().default(true),
    email: boolean('email').notNull().default(true),
    previews: boolean('previews').notNull().default(true),
    /** Quiet hours as HH:MM in `quiet_tz` (an IANA zone); all three set or none. */
    quietStart: text('quiet_start'),
    quietEnd: text('quiet_end'),
    quietTz: text('quiet_tz'),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check(
      'notification_settings_quiet_ck',
      sql`(${t.quietStart} is null) = (${t.quietEnd} is null) and (${t.quietStart} is null) = (${t.quietTz} is null)`,
    ),
  ],
);

/** Per-conversation level; no row means `all`. */
export const conversationNotify = pgTable(
  'conversation_notify',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    conversationId: uuid('conversation_id')
      .notNull()
      .references(() => conversations.id, { onDelete: 'cascade' }),
    level: text('level', { enum: ['all', 'mentions', 'none'] }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.userId, t.conversationId] }),
    check('conversation_notify_level_ck', sql`${t.level} in ('all', 'mentions', 'none')`),
  ],
);

/** Web Push subscriptions (one per browser or device). */
export const pushSubscriptions = pgTable(
  'push_subscriptions',
  {
    id: uuid('id').primaryKey(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    endpoint: text('endpoint').notNull().unique(),
    p256dh: text('p256dh').notNull(),
    auth: text('auth').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('push_subscriptions_user_idx').on(t.userId)],
);

/** Outgoing webhooks; the secret signs every delivery (HMAC-SHA256). */
export const webhooks = pgTable(
  'webhooks',
  {
    id: uuid('id').primaryKey(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    url: text('url').notNull(),
    secret: text('secret').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('webhooks_user_idx').on(t.userId)],
);

/**
 * How far each channel has notified a user in a conversation: the next notification covers the
 * seqs after max(this, the read cursor). Advanced in the transaction that claims a delivery.
 */
export const notifyCursors = pgTable(
  'notify_cursors',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    conversationId: uuid('conversation_id')
      .notNull()
      .references(() => conversations.id, { onDelete: 'cascade' }),
    channel: text('channel', { enum: ['push', 'email', 'webhook'] }).notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.conversationId, t.channel] })],
);

/**
 * One row per notification to one target (a push subscription, a webhook, the user's email):
 * claimed as `sending` with its payload before anything leaves, then `sent` or `failed`. Its id
 * is the delivery's idempotency key on the wire (Web Push `Topic`, `Hubbub-Event-Id`, Message-ID).
 */
export const notificationDeliveries = pgTable(
  'notification_deliveries',
  {
    id: uuid('id').primaryKey(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    channel: text('channel', { enum: ['push', 'email', 'webhook'] }).notNull(),
    /** The push subscription or webhook id; '' for email. */
    target: text('target').notNull(),
    /** The conversation for push and webhook; null for an email digest (several conversations). */
    conversationId: uuid('conversation_id'),
    /** `conv:from-to` ranges, sorted: one notification per (user, channel, target, seq range). */
    rangeKey: text('range_key').notNull(),
    status: text('status', { enum: ['sending', 'sent', 'failed'] }).notNull(),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    attempts: integer('attempts').notNull().default(0),
    error: text('error'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('notification_deliveries_range_uq').on(t.userId, t.channel, t.target, t.rangeKey),
    index('notification_deliveries_user_idx').on(t.userId, t.createdAt),
    index('notification_deliveries_sending_idx').on(t.userId, t.channel).where(sql`${t.status} = 'sending'`),
    check('notification_deliveries_status_ck', sql`${t.status} in ('sending', 'sent', 'failed')`),
  ],
);
