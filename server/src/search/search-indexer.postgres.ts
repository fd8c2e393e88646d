import { sql } from 'drizzle-orm';
import { rowsOf, type Db } from '../db/database.ts';
import type { Logger } from '../observability/logger.ts';
import type { StoredEvent } from '../store/message-store.ts';
import { ERASE_LOCK } from './message-search.postgres.ts';
import { PLAIN_TEXT_SQL, type SearchIndexer } from './message-search.ts';

/**
 * One batch for the conversations in $1 (a JSON array) whose search_heads rows the transaction
 * holds: reads each one's log after its indexed seq (at most $2 events), and applies them as
 * one statement. A data-modifying CTE cannot see what a sibling wrote, so the statement works
 * out each message's final state first: a new message gets the newest edit of the batch and is
 * left out when the batch also deletes it; edits and deletes of messages indexed earlier update
 * or remove their rows. Redacted messages and those of erased accounts are never indexed.
 */
const BATCH_SQL = (convs: string, perConv: number, language: string) => sql`
  with ev as (
    select e.conversation_id as conv, e.seq, e.id, e.kind, e.sender_id, e.ts, e.data
    from search_heads h
    cross join lateral (
      select * from log_events e where e.conversation_id = h.conversation_id and e.seq > h.indexed_seq
      order by e.seq limit ${perConv}) e
    where h.conversation_id in (select value::uuid from jsonb_array_elements_text(${convs}::text::jsonb))
  ),
  edits as (
    select distinct on (conv, (data->>'target')::bigint) conv, (data->>'target')::bigint as target,
      data->>'body' as body, data->'mentions' as mentions
    from ev where kind = 'edit' and data->>'body' is not null
    order by conv, (data->>'target')::bigint, seq desc
  ),
  dels as (select conv, (data->>'target')::bigint as target from ev where kind = 'delete'),
  fresh as (
    select m.conv, m.seq, m.id, m.sender_id, m.ts,
      coalesce(ed.body, m.data->>'body') as body,
      case when ed.target is null then m.data->'mentions' else ed.mentions end as mentions
    from ev m left join edits ed on ed.conv = m.conv and ed.target = m.seq
    where m.kind = 'message' and jsonb_typeof(m.data->'body') = 'string'
      and not exists (select 1 from dels d where d.conv = m.conv and d.target = m.seq)
      and not exists (select 1 from users u where u.id = m.sender_id and u.deleted_at is not null)
  ),
  ins as (
    insert into search_messages (conversation_id, seq, id, sender_id, ts, body, mentions, tsv)
    select conv, seq, id, sender_id, ts, body,
      case when jsonb_typeof(mentions) = 'array' and jsonb_array_length(mentions) > 0
        then array(select jsonb_array_elements_text(mentions)::uuid) end,
      to_tsvector(${language}::regconfig, ${sql.raw(PLAIN_TEXT_SQL('body'))})
    from fresh
    on conflict (conversation_id, seq) do nothing
  ),
  upd as (
    update search_messages s set body = ed.body, tsv = to_tsvector(${language}::regconfig, ${sql.raw(PLAIN_TEXT_SQL('ed.body'))}),
      mentions = case when jsonb_typeof(ed.mentions) = 'array' and jsonb_array_length(ed.mentions) > 0
        then array(select jsonb_array_elements_text(ed.mentions)::uuid) end
    from edits ed where s.conversation_id = ed.conv and s.seq = ed.target
  ),
  del as (delete from search_messages s using dels d where s.conversation_id = d.conv and s.seq = d.target),
  moved as (
    update search_heads h set indexed_seq = m.seq
    from (select conv, max(seq) as seq, count(*) as n from ev group by conv) m
    where h.conversation_id = m.conv
    returning h.conversation_id, m.n
  )
  select conversation_id, n from moved`;

export interface PostgresSearchIndexerOptions {
  db: Db;
  logger: Logger;
  /** The text search configuration (SEARCH_LANGUAGE). */
  language: string;
  /** How long noted conversations wait to be indexed together. */
  delayMs?: number;
  /** How often every conversation's head is compared with its index (heals a replica that died before indexing). */
  sweepMs?: number;
  /** Most conversations in one batch. */
  maxConvs?: number;
  /** Most events of one conversation in one batch. */
  perConv?: number;
}

/**
 * Indexes new events in batches, after their appends committed. Appends on this replica note
 * their conversation (`appended`); `delayMs` later every noted conversation is brought up to
 * date in one transaction. Each conversation's search_heads row says how far its index is
 * complete, and is locked while a batch works on it, so several replicas index side by side
 * (a row another holds is skipped and tried again later). A periodic sweep finds conversations
 * whose log is ahead of their index (events appended by a replica that died before indexing,
 * or before search existed) and indexes them the same way.
 */
export class PostgresSearchIndexer implements SearchIndexer {
  private dirty = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private sweeper: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private closed = false;
  /** Batches failed in a row (the retry backs off). */
  private failures = 0;
  /** The last batch's error, for `flush` to throw. */
  private failure: unknown = null;
  private readonly delayMs: number;
  private readonly maxConvs: number;
  private readonly perConv: number;

  constructor(private readonly d: PostgresSearchIndexerOptions) {
    this.delayMs = d.delayMs ?? 100;
    // At most 20,000 events a batch: on PGlite a batch holds the one connection while it runs.
    this.maxConvs = d.maxConvs ?? 100;
    this.perConv = d.perConv ?? 200;
  }

  /** Rebuilds the index if it was made with another language, then starts the periodic sweep. */
  async start(): Promise<void> {
    await this.useLanguage();
    const sweepMs = this.d.sweepMs ?? 30_000;
    const sweep = () => {
      this.sweep().catch((err) => this.d.logger.error({ err: (err as Error).message }, 'search index sweep failed'));
    };
    sweep();
    if (sweepMs > 0) {
      this.sweeper = setInterval(sweep, sweepMs);
      this.sweeper.unref();
    }
  }

  appended(e: Pick<StoredEvent, 'conv' | 'seq'>) {
    if (this.closed) return;
    this.dirty.add(e.conv);
    if (!this.timer && !this.running) this.timer = setTimeout(() => this.kick(), this.delayMs);
  }

  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    while ((this.running || this.dirty.size) && !this.closed) {
      if (!this.running) this.kick();
      await this.running;
      const failure = this.failure;
      this.failure = null;
      if (failure) throw failure;
    }
  }

  /** Notes every conversation whose log is ahead of its index, and indexes them. */
  async sweep(): Promise<void> {
    for (;;) {
      const rows = rowsOf<{ conversation_id: string }>(
        await this.d.db.execute(sql`
          select h.conversation_id from log_heads h
          left join search_heads s on s.conversation_id = h.conversation_id
          where h.last_seq > coalesce(s.indexed_seq, 0)
          limit 10000`),
      );
      for (const r of rows) this.dirty.add(r.conversation_id);
      await this.flush();
      if (rows.length < 10_000 || this.closed) return;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  private kick() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.running || this.closed) return;
    this.running = this.drain()
      .then(() => {
        this.failures = 0;
      })
      .catch((err) => {
        // The conversations stay noted, so the next append or sweep tries them again.
        this.d.logger.error({ err: (err as Error).message }, 'search indexing failed');
        this.failure = err;
        this.failures++;
      })
      .finally(() => {
        this.running = null;
        // After failures (the database away), the retries back off to 5 s instead of every delayMs.
        const wait = Math.min(this.delayMs * 2 ** this.failures, 5_000);
        if (this.dirty.size && !this.closed && !this.timer) this.timer = setTimeout(() => this.kick(), wait);
      });
  }

  private async drain() {
    while (this.dirty.size && !this.closed) {
      const convs = [...this.dirty].slice(0, this.maxConvs);
      for (const c of convs) this.dirty.delete(c);
      let again: string[];
      try {
        again = await this.batch(convs);
      } catch (err) {
        for (const c of convs) this.dirty.add(c);
        throw err;
      }
      for (const c of again) this.dirty.add(c);
      // Only held rows (another replica is on them) and long logs are left: not a busy loop.
      if (again.length === convs.length) return;
    }
  }

  /** Indexes what it can of these conversations; returns those with more to do. */
  private async batch(convs: string[]): Promise<string[]> {
    return this.d.db.transaction(async (tx) => {
      // Shared with every other batch, exclusive against an erasure (MessageSearch.eraseSender).
      await tx.execute(sql`select pg_advisory_xact_lock_shared(${ERASE_LOCK.toString()}::bigint)`);
      const list = JSON.stringify(convs);
      await tx.execute(sql`
        insert into search_heads (conversation_id)
        select value::uuid from jsonb_array_elements_text(${list}::text::jsonb)
        on conflict do nothing`);
      // Held until commit; the batch statement after it takes a fresh snapshot, so it sees every
      // batch another replica committed on these conversations before we got their rows.
      const held = rowsOf<{ conversation_id: string }>(
        await tx.execute(sql`
          select conversation_id from search_heads
          where conversation_id in (select value::uuid from jsonb_array_elements_text(${list}::text::jsonb))
          order by conversation_id
          for update skip locked`),
      ).map((r) => r.conversation_id);
      const heldSet = new Set(held);
      const again = convs.filter((c) => !heldSet.has(c));
      if (!held.length) return again;
      const done = rowsOf<{ conversation_id: string; n: string | number }>(
        await tx.execute(BATCH_SQL(JSON.stringify(held), this.perConv, this.d.language)),
      );
      for (const r of done) if (Number(r.n) >= this.perConv) again.push(r.conversation_id);
      return again;
    });
  }

  /**
   * The index holds tsvectors of one language; started with another, it is rebuilt once (one
   * replica does it, the others wait on the state row), then queries use the new one.
   */
  private async useLanguage() {
    const lang = this.d.language;
    await this.d.db.transaction(async (tx) => {
      await tx.execute(sql`insert into search_state (id, language) values (1, ${lang}) on conflict do nothing`);
      const changed = rowsOf<{ language: string }>(
        await tx.execute(sql`update search_state set language = ${lang} where id = 1 and language <> ${lang} returning language`),
      );
      if (!changed.length) return;
      this.d.logger.info({ language: lang }, 'search language changed: rebuilding the search index');
      await tx.execute(sql`update search_messages set tsv = to_tsvector(${lang}::regconfig, ${sql.raw(PLAIN_TEXT_SQL('body'))})`);
    });
  }
}
