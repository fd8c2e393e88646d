import { bigint, customType, index, integer, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';

const tsvector = customType<{ data: string }>({ dataType: () => 'tsvector' });

/**
 * The search index of the PostgreSQL message store: one row per message that can be found, with
 * its CURRENT text (an edit rewrites it, a delete or an account erasure removes it). Filled after
 * the append's transaction by the indexer (server/src/search/search-indexer.ts), never inside it,
 * so the send path pays nothing for it. Like the log it references no other table.
 */
export const searchMessages = pgTable(
  'search_messages',
  {
    conversationId: uuid('conversation_id').notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    id: uuid('id').notNull(),
    senderId: uuid('sender_id'),
    ts: timestamp('ts', { withTimezone: true, mode: 'date' }).notNull(),
    body: text('body').notNull(),
    /** Users the current text mentions; null for none (most messages), so the partial index stays small. */
    mentions: uuid('mentions').array(),
    /** to_tsvector(SEARCH_LANGUAGE, body), computed by the indexer. */
    tsv: tsvector('tsv').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.conversationId, t.seq] }),
    index('search_messages_tsv_idx').using('gin', t.tsv),
    // Erasure deletes a user's rows in every conversation, including ones they left.
    index('search_messages_sender_idx').on(t.senderId),
  ],
);

/** Per conversation, the log seq up to which the index is complete. Locked row by row by the indexers. */
export const searchHeads = pgTable('search_heads', {
  conversationId: uuid('conversation_id').primaryKey(),
  indexedSeq: bigint('indexed_seq', { mode: 'number' }).notNull().default(0),
});

/** One row: the text search configuration the index was built with (a change rebuilds it). */
export const searchState = pgTable('search_state', {
  id: integer('id').primaryKey(),
  language: text('language').notNull(),
});
