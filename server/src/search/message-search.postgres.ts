import { randomBytes } from 'node:crypto';
import { sql, type SQL } from 'drizzle-orm';
import { rowsOf, type Db } from '../db/database.ts';
import {
  markSnippet,
  escapeHtml,
  PLAIN_TEXT_SQL,
  type MessageSearch,
  type SearchHit,
  type SearchPage,
  type SearchRequest,
} from './message-search.ts';

/** Same key as the indexer's batches take shared: an erasure waits for the batches in flight. */
export const ERASE_LOCK = 0x687562736561n; // "hubsea"

/** Words of a snippet without a text query (operators only): the start of the message. */
const PLAIN_SNIPPET_WORDS = 30;

interface Row {
  conversation_id: string;
  seq: string | number;
  id: string;
  sender_id: string | null;
  ts: string | Date;
  rank: number | string;
  snippet: string;
}

/**
 * Search on PostgreSQL and PGlite: search_messages (filled by PostgresSearchIndexer) joined to
 * the caller's memberships, a GIN index on the tsvector, websearch_to_tsquery for the text and
 * ts_headline for the snippet, keyset pagination on (rank or time, conversation, seq).
 */
export class PostgresMessageSearch implements MessageSearch {
  constructor(private readonly d: { db: Db; language: string }) {}

  async search(r: SearchRequest): Promise<SearchPage> {
    const lang = this.d.language;
    const hasText = r.text.length > 0;
    const start = `hbS${randomBytes(8).toString('hex')}`;
    const stop = `hbE${randomBytes(8).toString('hex')}`;
    const where: SQL[] = [sql`m.user_id = ${r.userId}`];
    // A deleted message's tombstone has neither text nor tsvector: a text query never matches
    // it, and the plan of one stays as it was without the tombstones.
    if (hasText) where.push(sql`s.tsv @@ q.q`);
    else where.push(sql`s.body is not null`);
    if (r.historyDepth < Number.MAX_SAFE_INTEGER) where.push(sql`s.seq > h.last_seq - ${r.historyDepth}::bigint`);
    const uuids = (ids: string[]) =>
      sql.join(
        ids.map((id) => sql`${id}::uuid`),
        sql`, `,
      );
    if (r.from.length) where.push(sql`s.sender_id in (${uuids(r.from)})`);
    if (r.in.length) where.push(sql`m.conversation_id in (${uuids(r.in)})`);
    if (r.after) where.push(sql`s.ts >= ${r.after.toISOString()}::timestamptz`);
    if (r.before) where.push(sql`s.ts < ${r.before.toISOString()}::timestamptz`);
    if (r.hasMention) where.push(sql`s.mentions @> array[${r.userId}::uuid]`);
    const byRank = r.order === 'relevance' && hasText;
    const rank = hasText ? sql`ts_rank(s.tsv, q.q)` : sql`0::real`;
    const key = byRank ? rank : sql`s.ts`;
    if (r.cursor) {
      const at = byRank ? sql`${r.cursor.key}::real` : sql`${new Date(r.cursor.key).toISOString()}::timestamptz`;
      where.push(sql`(${key}, s.conversation_id, s.seq) < (${at}, ${r.cursor.conversationId}::uuid, ${r.cursor.seq}::bigint)`);
    }
    const depthJoin = r.historyDepth < Number.MAX_SAFE_INTEGER ? sql`join log_heads h on h.conversation_id = m.conversation_id` : sql``;
    const snippet = hasText
      ? sql`ts_headline(${lang}::regconfig, ${sql.raw(PLAIN_TEXT_SQL('p.body'))}, q.q, ${`StartSel=${start}, StopSel=${stop}, MaxWords=30, MinWords=15, ShortWord=0`})`
      : sql`array_to_string((regexp_split_to_array(p.body, '\\s+'))[1:${PLAIN_SNIPPET_WORDS}], ' ')`;
    const rows = rowsOf<Row>(
      await this.d.db.execute(sql`
        with q as (select ${hasText ? sql`websearch_to_tsquery(${lang}::regconfig, ${r.text})` : sql`null::tsquery`} as q),
        page as (
          select s.conversation_id, s.seq, s.id, s.sender_id, s.ts, s.body, ${rank} as rank
          from members m
          join search_messages s on s.conversation_id = m.conversation_id
          ${depthJoin}
          cross join q
          where ${sql.join(where, sql` and `)}
          order by ${key} desc, s.conversation_id desc, s.seq desc
          limit ${r.limit + 1}
        )
        select p.conversation_id, p.seq, p.id, p.sender_id, p.ts, p.rank, ${snippet} as snippet
        from page p cross join q
        order by ${byRank ? sql`p.rank` : sql`p.ts`} desc, p.conversation_id desc, p.seq desc`),
    );
    const more = rows.length > r.limit;
    const shown = rows.slice(0, r.limit);
    const hits: SearchHit[] = shown.map((row) => ({
      conversationId: row.conversation_id,
      seq: Number(row.seq),
      id: row.id,
      from: row.sender_id,
      ts: new Date(row.ts).getTime(),
      snippet: hasText ? markSnippet(row.snippet, start, stop) : escapeHtml(row.snippet),
    }));
    const last = shown.at(-1);
    if (!more || !last) return { hits };
    return {
      hits,
      next: { key: byRank ? Number(last.rank) : new Date(last.ts).getTime(), conversationId: last.conversation_id, seq: Number(last.seq) },
    };
  }

  async eraseSender(userId: string): Promise<void> {
    // Exclusive against the indexer's shared hold: a batch that read the user's text before the
    // erasure commits before this delete runs, so the delete sees (and removes) what it wrote.
    await this.d.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(${ERASE_LOCK.toString()}::bigint)`);
      await tx.execute(sql`delete from search_messages where sender_id = ${userId}::uuid`);
    });
  }
}
