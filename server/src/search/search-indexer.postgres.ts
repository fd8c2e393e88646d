import { sql } from 'drizzle-orm';
import { rowsOf, type Db } from '../db/database.ts';
import { isRetryableTxError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { StoredEvent } from '../store/message-store.ts';
import { IndexBuffer, type IndexBatch } from './index-buffer.ts';
import { applyBatchSql, healSql } from './index-sql.postgres.ts';
import { ERASE_LOCK } from './message-search.postgres.ts';
import { PLAIN_TEXT_SQL, type SearchIndexer } from './message-search.ts';

export interface PostgresSearchIndexerOptions {
  db: Db;
  logger: Logger;
  /** The text search configuration (SEARCH_LANGUAGE). */
  language: string;
  /** How long after the first buffered event a batch is written (unless it fills first). */
  delayMs?: number;
  /** How often every conversation's cursor is compared with its log (heals a replica that died before indexing). */
  sweepMs?: number;
  /** Events that make a batch full: it is written at once. */
  maxBatch?: number;
  /** Events held while the database is away; past it they are dropped and their conversations healed from the log later. */
  maxBuffered?: number;
  /** Most conversations in one heal from the log. */
  maxConvs?: number;
  /** Most events of one conversation in one heal. */
  perConv?: number;
}

/**
 * Indexes this replica's new events after their appends committed, from the events the hub's
 * after-append hook already holds: they are buffered (IndexBuffer), and written `delayMs` after
 * the first one, or at once when `maxBatch` are waiting, as one statement in one transaction
 * whatever the number of conversations. Each conversation's search_heads row is a cursor: every
 * event up to it is indexed. A batch moves it over the events it applied when they follow it
 * without a gap (another replica's events in between leave it where it is).
 *
 * What the hook's events cannot cover is healed from the log (one statement per up to
 * `maxConvs` conversations, their cursor rows held, so replicas heal side by side): a batch that
 * failed, events dropped past `maxBuffered`, and what a periodic sweep finds with its log ahead
 * of its cursor: a replica that died with events not indexed, a log written before search
 * existed, or runs of seqs that replicas appended in turns.
 */
export class PostgresSearchIndexer implements SearchIndexer {
  private buffer = new IndexBuffer();
  /** Conversations to bring up to date from the log. */
  private stale = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private sweeper: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private closed = false;
  /** Runs failed in a row (the retry backs off). */
  private failures = 0;
  /** The last run's error, for `flush` to throw. */
  private failure: unknown = null;
  private readonly delayMs: number;
  private readonly maxBatch: number;
  private readonly maxBuffered: number;
  private readonly maxConvs: number;
  private readonly perConv: number;

  constructor(private readonly d: PostgresSearchIndexerOptions) {
    this.delayMs = d.delayMs ?? 100;
    this.maxBatch = d.maxBatch ?? 5000;
    this.maxBuffered = d.maxBuffered ?? 100_000;
    // At most 20,000 events a heal: on PGlite it holds the one connection while it runs.
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

  appended(e: StoredEvent) {
    if (this.closed) return;
    this.buffer.add(e);
    if (this.buffer.size >= this.maxBuffered) {
      // The database has been away this long: keep memory bounded, the log has every event.
      for (const c of this.buffer.take().convs) this.stale.add(c);
    }
    if (this.running) return;
    if (this.buffer.size >= this.maxBatch) this.kick();
    else if (!this.timer) this.timer = setTimeout(() => this.kick(), this.delayMs);
  }

  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    while ((this.running || this.buffer.size || this.stale.size) && !this.closed) {
      if (!this.running) this.kick();
      await this.running;
      const failure = this.failure;
      this.failure = null;
      if (failure) throw failure;
    }
  }

  /** Notes every conversation whose log is ahead of its cursor, and heals them. */
  async sweep(): Promise<void> {
    for (;;) {
      const rows = rowsOf<{ conversation_id: string }>(
        await this.d.db.execute(sql`
          select h.conversation_id from log_heads h
          left join search_heads s on s.conversation_id = h.conversation_id
          where h.last_seq > coalesce(s.indexed_seq, 0)
          limit 10000`),
      );
      for (const r of rows) this.stale.add(r.conversation_id);
      await this.flush();
      if (rows.length < 10_000 || this.closed) return;
    }
  }

  /** Stops, after writing what is buffered (bounded: a database that does not answer is left to another replica's sweep). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
    if (!this.buffer.size) return;
    const last = this.apply(this.buffer.take()).catch((err) =>
      this.d.logger.warn({ err: (err as Error).message }, 'search index: the last batch was not written (another replica sweeps it)'),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([last, new Promise((r) => (timer = setTimeout(r, 5_000)))]);
    clearTimeout(timer);
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
        // What failed is noted as stale, so the next run heals it from the log.
        this.d.logger.error({ err: (err as Error).message }, 'search indexing failed');
        this.failure = err;
        this.failures++;
      })
      .finally(() => {
        this.running = null;
        if (this.closed || this.timer || !(this.buffer.size || this.stale.size)) return;
        // A full buffer goes at once; after failures (the database away) the retries back off to 5 s.
        const wait = this.failures
          ? Math.min(this.delayMs * 2 ** this.failures, 5_000)
          : this.buffer.size >= this.maxBatch
            ? 0
            : this.delayMs;
        this.timer = setTimeout(() => this.kick(), wait);
      });
  }

  private async drain() {
    if (this.buffer.size) {
      const batch = this.buffer.take();
      try {
        await this.apply(batch);
      } catch (err) {
        for (const c of batch.convs) this.stale.add(c);
        throw err;
      }
    }
    while (this.stale.size && !this.closed) {
      const convs = [...this.stale].slice(0, this.maxConvs);
      for (const c of convs) this.stale.delete(c);
      let again: string[];
      try {
        again = await this.heal(convs);
      } catch (err) {
        for (const c of convs) this.stale.add(c);
        throw err;
      }
      for (const c of again) this.stale.add(c);
      // Only held rows (another replica is on them) and long logs are left: not a busy loop.
      if (again.length === convs.length) return;
    }
  }

  /** Writes one batch of the hook's events. */
  private async apply(batch: IndexBatch) {
    // Two replicas' batches on the same conversation (one edits what the other appended) may lock
    // its rows in opposite orders: PostgreSQL aborts one, which is tried again as it was.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.d.db.transaction(async (tx) => {
          // Shared with every other writer, exclusive against an erasure (MessageSearch.eraseSender);
          // the batch's statement takes its snapshot after it, so it sees an erasure that went first.
          await tx.execute(sql`select pg_advisory_xact_lock_shared(${ERASE_LOCK.toString()}::bigint)`);
          await tx.execute(applyBatchSql(batch, this.d.language));
        });
      } catch (err) {
        if (!isRetryableTxError(err) || attempt >= 3) throw err;
      }
    }
  }

  /** Heals what it can of these conversations from the log; returns those with more to do. */
  private async heal(convs: string[]): Promise<string[]> {
    return this.d.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock_shared(${ERASE_LOCK.toString()}::bigint)`);
      const list = JSON.stringify(convs);
      await tx.execute(sql`
        insert into search_heads (conversation_id)
        select value::uuid from jsonb_array_elements_text(${list}::text::jsonb)
        on conflict do nothing`);
      // Held until commit; the heal statement after it takes a fresh snapshot, so it sees every
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
      const done = rowsOf<{ conversation_id: string; n: string | number }>(await tx.execute(healSql(held, this.perConv, this.d.language)));
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
      await tx.execute(
        sql`update search_messages set tsv = to_tsvector(${lang}::regconfig, ${sql.raw(PLAIN_TEXT_SQL('body'))}) where body is not null`,
      );
    });
  }
}
