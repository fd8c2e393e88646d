import { bigint, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';

/**
 * Tables of the PostgreSQL message store. They reference nothing else on purpose: the message
 * store is a separate concern that can live in Cassandra instead (MESSAGE_STORE=cassandra).
 */
export const logHeads = pgTable('log_heads', {
  conversationId: uuid('conversation_id').primaryKey(),
  lastSeq: bigint('last_seq', { mode: 'number' }).notNull().default(0),
  /**
   * The log's epoch: changes when a restore (or any rewind) resets `last_seq`, so that a client
   * holding a position from before it is told its position is void instead of being served
   * reissued seqs it would take for ones it already has (`npm run restore:epochs` bumps it).
   */
  epoch: bigint('epoch', { mode: 'number' }).notNull().default(1),
  /** The head the last rewind left (null: never rewound): acks above it from an older epoch were lost. */
  restoredSeq: bigint('restored_seq', { mode: 'number' }),
});

export const logEvents = pgTable(
  'log_events',
  {
    conversationId: uuid('conversation_id').notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    id: uuid('id').notNull(),
    kind: text('kind').notNull(),
    senderId: uuid('sender_id'),
    cid: text('cid'),
    ts: timestamp('ts', { withTimezone: true, mode: 'date' }).notNull(),
    data: jsonb('data').$type<Record<string, unknown>>().notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.conversationId, t.seq] }),
    // Also the index of a sender's events in a conversation (erasure, `seqsBySender`): its
    // leading columns. Nothing looks events up by sender alone, so there is no index for that
    // (there was one until migration 0003: one more index entry and its WAL on every append).
    uniqueIndex('log_events_cid_uq').on(t.conversationId, t.senderId, t.cid),
  ],
);
