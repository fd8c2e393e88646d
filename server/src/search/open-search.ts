import { sql } from 'drizzle-orm';
import type { Config } from '../config.ts';
import { rowsOf, type Database } from '../db/database.ts';
import type { Logger } from '../observability/logger.ts';
import type { StoredEvent } from '../store/message-store.ts';
import type { MessageSearch, SearchIndexer } from './message-search.ts';
import { PostgresMessageSearch } from './message-search.postgres.ts';
import { noIndexer, UnsupportedMessageSearch } from './message-search.unsupported.ts';
import { PostgresSearchIndexer } from './search-indexer.postgres.ts';

export interface SearchParts {
  search: MessageSearch;
  indexer: SearchIndexer;
}

/**
 * Search for the configured message store: full-text search in the database on PostgreSQL and
 * PGlite (the index is started, and rebuilt first if SEARCH_LANGUAGE changed), refused with a
 * clear error on Cassandra. SEARCH_INDEXER=false leaves indexing to other replicas.
 */
export async function openSearch(config: Config, database: Database, logger: Logger): Promise<SearchParts> {
  if (config.MESSAGE_STORE === 'cassandra') {
    return { search: new UnsupportedMessageSearch('message search is not available with MESSAGE_STORE=cassandra'), indexer: noIndexer };
  }
  const language = config.SEARCH_LANGUAGE;
  const known = rowsOf<{ cfgname: string }>(await database.db.execute(sql`select cfgname from pg_ts_config where cfgname = ${language}`));
  if (!known.length)
    throw new Error(`invalid configuration:\n  SEARCH_LANGUAGE: the database has no text search configuration "${language}"`);
  const search = new PostgresMessageSearch({ db: database.db, language });
  if (!config.SEARCH_INDEXER) return { search, indexer: noIndexer };
  const indexer = new PostgresSearchIndexer({ db: database.db, logger, language, delayMs: config.SEARCH_INDEX_DELAY_MS });
  await indexer.start();
  return { search, indexer };
}

/** What the hub tells of each durable event: the notification trigger's hook, and the indexer's beside it. */
export function alsoIndexing<N extends { appended(e: StoredEvent): void; membershipChanged?(conv: string): void; forgetMembers?(): void }>(
  notify: N | undefined,
  indexer: SearchIndexer,
) {
  if (indexer === noIndexer) return notify;
  return {
    appended(e: StoredEvent) {
      notify?.appended(e);
      indexer.appended(e);
    },
    membershipChanged: notify?.membershipChanged ? (c: string) => notify.membershipChanged!(c) : undefined,
    forgetMembers: notify?.forgetMembers ? () => notify.forgetMembers!() : undefined,
  };
}
