import { bigint, index, integer, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { conversations } from './conversations.ts';
import { users } from './users.ts';

/**
 * Files sent in messages: the bytes are in blob storage under `<id>/file` (and `<id>/thumb` for
 * images); this row says whose they are, for which conversation, and how far the upload got.
 * `pending` until `attachments.complete` checked the bytes; `ready` after (`refused`: the bytes
 * failed the checks and were deleted; the row stays until its upload URL has expired, so bytes sent
 * late are cleaned up too). Bound to one message (`messageCid`) by the send that carries it.
 */
export const attachments = pgTable(
  'attachments',
  {
    id: uuid('id').primaryKey(),
    conversationId: uuid('conversation_id')
      .notNull()
      .references(() => conversations.id, { onDelete: 'cascade' }),
    ownerId: uuid('owner_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    contentType: text('content_type').notNull(),
    size: bigint('size', { mode: 'number' }).notNull(),
    state: text('state', { enum: ['pending', 'ready', 'refused'] })
      .notNull()
      .default('pending'),
    width: integer('width'),
    height: integer('height'),
    /** A tiny inline image (data: URL) shown while the thumbnail loads. */
    preview: text('preview'),
    hasThumb: integer('has_thumb').notNull().default(0),
    /** The `cid` of the message that carries it (null: not sent yet). */
    messageCid: text('message_cid'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('attachments_owner_idx').on(t.ownerId), index('attachments_pending_idx').on(t.state, t.createdAt)],
);
