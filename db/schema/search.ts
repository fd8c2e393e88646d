import { bigint, customType, index, integer, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';

const tsvector = customType<{ data: string }>({ dataType: () => 'tsvector' });

/**
 * The search index of the PostgreSQL message store: one row per message that can be found, with
 * its CURRENT text (an edit rewrites it, an account erasure removes it, a delete leaves a
 * tombstone: body, tsv and mentions null). Filled after the append's transaction by the indexer
 * (server/src/search/search-indexer.postgres.ts), never inside it. Like the log it references no
 * other table.
 */
export const searchMessages = pgTable(
  'search_messages',
  {
    conversationId: uuid('conversation_id').notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    /** Null only on a tombstone written before the message's own row (another replica indexes that). */
    id: uuid('id'),
    senderId: uuid('sender_id'),
    ts: timestamp('ts', { withTimezone: true, mode: 'date' }),
    /** The current text; null: deleted (a tombstone, kept so a late insert of the message cannot bring it back). */
    body: text('body'),
    /** Users the current text mentions; null for none (most messages), so the partial index stays small. */
    mentions: uuid('mentions').array(),
    /** to_tsvector(SEARCH_LANGUAGE, body), computed by the indexer. */
    tsv: tsvector('tsv'),
    /**
     * The seq of the event that gave the row its state (the message, its newest edit, or the
     * delete): replicas index a conversation's events side by side, in any order, and an older
     * event never overwrites a newer one.
     */
    version: bigint('version', { mode: 'number' }).notNull().default(0),
  },
  (t) => [
    primaryKey({ columns: [t.conversationId, t.seq] }),
    // Fast update: a batch's entries go to the pending list and are merged into the tree in bulk
    // (a third of the cost of inserting each entry); searches read the pending list too, so it is
    // kept at 2 MB.
    index('search_messages_tsv_idx').using('gin', t.tsv).with({ fastupdate: true, gin_pending_list_limit: 2048 }),
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
