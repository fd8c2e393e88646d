import { and, eq, inArray, sql } from 'drizzle-orm';
import { rowsOf, type Db } from '../db/database.ts';
import { isUniqueViolation } from '../errors.ts';
import { logEvents, logHeads } from '../../../db/schema/index.ts';
import type { AppendResult, EventDraft, MessageStore, ReadRange, StoredEvent } from './message-store.ts';

/** A row of a raw `db.execute` (snake_case columns; drivers differ on timestamp and bigint types). */
interface RawRow {
  conversation_id: string;
  seq: string | number;
  id: string;
  kind: string;
  sender_id: string | null;
  cid: string | null;
  ts: string | Date;
  data: string | Record<string, unknown>;
}

const rawEvent = (r: RawRow): StoredEvent => {
  const e: StoredEvent = {
    conv: r.conversation_id,
    seq: Number(r.seq),
    id: r.id,
    kind: r.kind as StoredEvent['kind'],
    from: r.sender_id,
    ts: new Date(r.ts).getTime(),
    data: typeof r.data === 'string' ? (JSON.parse(r.data) as Record<string, unknown>) : r.data,
  };
  if (r.cid != null) e.cid = r.cid;
  return e;
};

/**
 * The message store on PostgreSQL (or PGlite). Seqs come from a per-conversation head row
 * bumped in the same transaction as the insert, so a seq exists only if its event does:
 * no holes, no reuse, whatever happens to Redis or a hub.
 */
export class PostgresMessageStore implements MessageStore {
  constructor(private readonly db: Db) {}

  async init() {
    // Tables come with the drizzle migrations, applied at start.
  }

  async append(conv: string, drafts: EventDraft[]): Promise<AppendResult[]> {
    if (drafts.length === 0) return [];
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.appendOnce(conv, drafts);
      } catch (err) {
        // Another replica stored one of these cids between our lookup and our insert: the
        // unique index refused the whole batch; the next attempt finds it and returns it.
        if (attempt < 3 && isUniqueViolation(err)) continue;
        throw err;
      }
    }
  }

  /**
   * Four round trips for a batch: the cid lookup, then BEGIN, one upsert that locks the head row
   * and reserves `n` seqs, one multi-row insert, COMMIT. The head row lock serialises appends to
   * one conversation; other conversations proceed in parallel.
   */
  private async appendOnce(conv: string, drafts: EventDraft[]): Promise<AppendResult[]> {
    const keyOf = (d: EventDraft) => (d.cid != null && d.from != null ? `${d.from}\u0000${d.cid}` : null);
    const existing = new Map<string, StoredEvent>();
    const cids = drafts.filter((d) => keyOf(d)).map((d) => d.cid!);
    if (cids.length) {
      // The append path uses plain SQL: the query builder was a fifth of a hub's CPU under load.
      const rows = rowsOf<RawRow>(
        await this.db.execute(
          sql`select * from log_events where conversation_id = ${conv} and cid in (${sql.join(cids.map((c) => sql`${c}`), sql`, `)})`,
        ),
      );
      for (const r of rows) existing.set(`${r.sender_id}\u0000${r.cid}`, rawEvent(r));
    }
    // Which drafts are new; a cid repeated inside the batch is stored once.
    const fresh: EventDraft[] = [];
    const firstInBatch = new Map<string, number>();
    type Plan = { dup: StoredEvent } | { sameAs: number } | { fresh: number };
    const plan = drafts.map((d): Plan => {
      const key = keyOf(d);
      if (key && existing.has(key)) return { dup: existing.get(key)! };
      if (key && firstInBatch.has(key)) return { sameAs: firstInBatch.get(key)! };
      if (key) firstInBatch.set(key, fresh.length);
      fresh.push(d);
      return { fresh: fresh.length - 1 };
    });
    if (fresh.length === 0) return plan.map((p) => ({ event: (p as { dup: StoredEvent }).dup, duplicate: true }));

    const events = await this.db.transaction(async (tx) => {
      const [head] = rowsOf<{ last_seq: string | number }>(
        await tx.execute(sql`
          insert into log_heads (conversation_id, last_seq) values (${conv}, ${fresh.length})
          on conflict (conversation_id) do update set last_seq = log_heads.last_seq + ${fresh.length}
          returning last_seq`),
      );
      const first = Number(head!.last_seq) - fresh.length + 1;
      const out = fresh.map((d, i): StoredEvent => ({ ...d, conv, seq: first + i }));
      const values = out.map(
        (e) =>
          sql`(${conv}, ${e.seq}, ${e.id}, ${e.kind}, ${e.from}, ${e.cid ?? null}, ${new Date(e.ts).toISOString()}::timestamptz, ${JSON.stringify(e.data)}::jsonb)`,
      );
      await tx.execute(
        sql`insert into log_events (conversation_id, seq, id, kind, sender_id, cid, ts, data) values ${sql.join(values, sql`, `)}`,
      );
      return out;
    });
    return plan.map((p) =>
      'dup' in p
        ? { event: p.dup, duplicate: true }
        : 'sameAs' in p
          ? { event: events[p.sameAs]!, duplicate: true }
          : { event: events[p.fresh]!, duplicate: false },
    );
  }

  async read(conv: string, range: ReadRange): Promise<StoredEvent[]> {
    const conds = [sql`conversation_id = ${conv}`];
    if (range.afterSeq != null) conds.push(sql`seq > ${range.afterSeq}`);
    if (range.beforeSeq != null) conds.push(sql`seq < ${range.beforeSeq}`);
    const newestFirst = range.afterSeq == null && range.beforeSeq != null;
    const rows = rowsOf<RawRow>(
      await this.db.execute(
        sql`select * from log_events where ${sql.join(conds, sql` and `)} order by seq ${newestFirst ? sql`desc` : sql`asc`} limit ${range.limit}`,
      ),
    );
    const events = rows.map(rawEvent);
    return newestFirst ? events.reverse() : events;
  }

  async lastSeqs(convs: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>(convs.map((c) => [c, 0]));
    if (!convs.length) return out;
    const rows = await this.db
      .select()
      .from(logHeads)
      .where(inArray(logHeads.conversationId, convs));
    for (const r of rows) out.set(r.conversationId, Number(r.lastSeq));
    return out;
  }

  async lastMessages(convs: string[]): Promise<Map<string, StoredEvent>> {
    const out = new Map<string, StoredEvent>();
    if (!convs.length) return out;
    const rows = rowsOf<RawRow>(
      await this.db.execute(sql`
        select distinct on (conversation_id) * from log_events
        where conversation_id in (${sql.join(convs.map((c) => sql`${c}`), sql`, `)}) and kind = 'message'
        order by conversation_id, seq desc`),
    );
    for (const r of rows) out.set(r.conversation_id, rawEvent(r));
    return out;
  }

  async redact(conv: string, seqs: number[]) {
    if (!seqs.length) return;
    await this.db
      .update(logEvents)
      .set({ data: sql`(${logEvents.data} - 'body') || '{"body":null,"redacted":true}'::jsonb` })
      .where(and(eq(logEvents.conversationId, conv), inArray(logEvents.seq, seqs)));
  }

  async seqsBySender(conv: string, from: string): Promise<number[]> {
    const rows = await this.db
      .select({ seq: logEvents.seq })
      .from(logEvents)
      .where(and(eq(logEvents.conversationId, conv), eq(logEvents.senderId, from), eq(logEvents.kind, 'message')));
    return rows.map((r) => Number(r.seq));
  }

  async close() {}
}
