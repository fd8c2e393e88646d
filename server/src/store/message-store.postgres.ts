import { and, eq, inArray, sql } from 'drizzle-orm';
import { rowsOf, type Database, type Db } from '../db/database.ts';
import { isDataError, isDeadlock, isUniqueViolation } from '../errors.ts';
import { logEvents } from '../../../db/schema/index.ts';
import { rewindLogs } from './log-rewind.ts';
import {
  AppendRefused,
  CARRIES_TEXT_SQL,
  REDACTED_DATA_SQL,
  type AppendBatch,
  type AppendResult,
  type EventDraft,
  type LogHead,
  type MessageStore,
  type ReadRange,
  type RewindOutcome,
  type StoredEvent,
} from './message-store.ts';

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
 * The whole append, one prepared statement for any number of conversations. $1 is a JSON array
 * of rows {i, conv, id, kind, sender, cid, ts, data}; the result is, per row i, its seq and, for
 * a (conv, sender, cid) already stored, the stored event. See appendOnce.
 */
export const APPEND_SQL = `
  with inp as (
    select * from jsonb_to_recordset($1::text::jsonb)
      as t(i int, conv uuid, id uuid, kind text, sender uuid, cid text, ts timestamptz, data jsonb)
  ),
  dup as (
    -- A lateral with a LIMIT (the cid index is unique, so at most one row anyway): PostgreSQL
    -- cannot flatten it into a join, so every plan probes the cid index once per input row.
    -- Without the LIMIT the generic plan was a hash join over a sequential scan of all of
    -- log_events, on every append (test/integration/sql-plans.test.ts).
    select inp.i, e.seq, to_jsonb(e) as ev from inp
    cross join lateral (
      select * from log_events e
      where e.conversation_id = inp.conv and e.sender_id = inp.sender and e.cid = inp.cid
      limit 1
    ) e
  ),
  fresh as (select inp.* from inp where not exists (select 1 from dup where dup.i = inp.i)),
  counts as (select conv, count(*)::bigint as n from fresh group by conv),
  heads as (
    insert into log_heads as h (conversation_id, last_seq)
    select conv, n from counts order by conv
    on conflict (conversation_id) do update set last_seq = h.last_seq + excluded.last_seq
    returning h.conversation_id, h.last_seq
  ),
  numbered as (
    select f.*, heads.last_seq - counts.n + row_number() over (partition by f.conv order by f.i) as seq
    from fresh f join counts on counts.conv = f.conv join heads on heads.conversation_id = f.conv
  ),
  ins as (
    insert into log_events (conversation_id, seq, id, kind, sender_id, cid, ts, data)
    select conv, seq, id, kind, sender, cid, ts, data from numbered
  ),
  -- A sender has read their own message: their cursor moves to their newest new message here,
  -- in the same commit (one round trip and one WAL flush instead of a second statement).
  own as (
    select conv, sender, max(seq) as seq from numbered
    where kind = 'message' and sender is not null group by conv, sender
  ),
  cur as (
    update members m set read_seq = own.seq from own
    where m.conversation_id = own.conv and m.user_id = own.sender and m.read_seq < own.seq
    returning m.conversation_id, m.user_id, m.read_seq
  )
  select n.i, n.seq, null::jsonb as dup, cur.read_seq as read from numbered n
  left join cur on cur.conversation_id = n.conv and cur.user_id = n.sender and cur.read_seq = n.seq
  union all
  select i, seq, ev, null from dup`;

/**
 * The same append for one draft, the common case below group-commit load (a write holds one
 * send): typed parameters instead of a JSON array, no grouping, numbering or join. $1 conv,
 * $2 id, $3 kind, $4 sender, $5 cid, $6 ts, $7 data (JSON text). PostgreSQL spent about a
 * quarter less CPU on it per append than on APPEND_SQL with one row, measured side by side.
 * The head row is bumped only when the cid is new; the author's cursor moves as in APPEND_SQL.
 */
export const APPEND_ONE_SQL = `
  with dup as (
    select e.seq, to_jsonb(e) as ev from log_events e
    where e.conversation_id = $1 and e.sender_id = $4 and e.cid = $5
    limit 1
  ),
  head as (
    insert into log_heads as h (conversation_id, last_seq)
    select $1, 1 where not exists (select 1 from dup)
    on conflict (conversation_id) do update set last_seq = h.last_seq + 1
    returning h.last_seq
  ),
  ins as (
    insert into log_events (conversation_id, seq, id, kind, sender_id, cid, ts, data)
    select $1, head.last_seq, $2, $3, $4, $5, $6, $7::text::jsonb from head
  ),
  cur as (
    update members m set read_seq = head.last_seq from head
    where $3 = 'message' and m.conversation_id = $1 and m.user_id = $4 and m.read_seq < head.last_seq
    returning m.read_seq
  )
  select head.last_seq as seq, null::jsonb as dup, (select read_seq from cur) as read from head
  union all
  select seq, ev, null from dup`;

const READ_RANGE_SQL = `select * from log_events
  where conversation_id = $1 and seq > $2::bigint and seq < $3::bigint order by seq asc limit $4::int`;
const READ_NEWEST_BEFORE_SQL = `select * from log_events
  where conversation_id = $1 and seq < $2::bigint order by seq desc limit $3::int`;
// Lateral with a LIMIT, as in APPEND_SQL: one key lookup per conversation, never a scan of
// log_heads (which an IN (subquery) was planned as, growing with the number of conversations).
export const LAST_SEQS_SQL = `select h.conversation_id, h.last_seq
  from jsonb_array_elements_text($1::text::jsonb) as q(conv)
  cross join lateral (
    select conversation_id, last_seq from log_heads where conversation_id = q.conv::uuid limit 1) h`;
// The same lookup with the epoch (ready, resume, history): read apart from the append, which
// never changes an epoch.
const HEADS_SQL = `select h.conversation_id, h.last_seq, h.epoch, h.restored_seq
  from jsonb_array_elements_text($1::text::jsonb) as q(conv)
  cross join lateral (
    select conversation_id, last_seq, epoch, restored_seq from log_heads where conversation_id = q.conv::uuid limit 1) h`;

/**
 * The message store on PostgreSQL (or PGlite). Seqs come from a per-conversation head row
 * bumped in the same transaction as the insert, so a seq exists only if its event does:
 * no holes, no reuse, whatever happens to Redis or a hub.
 */
export class PostgresMessageStore implements MessageStore {
  readonly movesSenderCursor = true;
  private readonly db: Db;

  constructor(private readonly database: Database) {
    this.db = database.db;
  }

  async init() {
    // Tables come with the drizzle migrations, applied at start.
  }

  async append(conv: string, drafts: EventDraft[]): Promise<AppendResult[]> {
    return (await this.appendRetrying([{ conv, drafts }]))[0]!;
  }

  async appendMany(batches: AppendBatch[]): Promise<PromiseSettledResult<AppendResult[]>[]> {
    try {
      const results = await this.appendRetrying(batches);
      return results.map((value) => ({ status: 'fulfilled', value }));
    } catch (err) {
      // The statement was refused as a whole; when the refusal is about the data (a value
      // PostgreSQL cannot take), find the batch at fault by writing each on its own. Anything
      // else (connection lost: the outcome is unknown) fails every batch.
      if (!isDataError(err)) return batches.map(() => ({ status: 'rejected', reason: err }));
      if (batches.length === 1) return [{ status: 'rejected', reason: new AppendRefused(err) }];
      return Promise.all(batches.map((b) => this.appendMany([b]).then(([o]) => o!)));
    }
  }

  private async appendRetrying(batches: AppendBatch[]): Promise<AppendResult[][]> {
    // Each unique violation makes one of our cids visible as stored, so a group commit of n
    // drafts needs at most n retries for them.
    const attempts = 3 + batches.reduce((n, b) => n + b.drafts.length, 0);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.appendOnce(batches);
      } catch (err) {
        // Another replica stored one of these cids between our snapshot and our insert: the
        // unique index refused the whole statement; the next attempt finds it and returns it.
        // A deadlock (two replicas' head locks) cannot happen with heads locked in id order,
        // but is retried the same way should a plan ever lock them otherwise.
        if (attempt < attempts && (isUniqueViolation(err) || isDeadlock(err))) continue;
        throw err;
      }
    }
  }

  /**
   * One statement, one round trip, for any number of conversations: it finds the drafts whose
   * (sender, cid) is already stored, bumps each conversation's head row by its count of new
   * drafts (locking the heads in id order, so concurrent statements never deadlock), and
   * inserts the new events with the seqs that reserves. The head row lock serialises appends
   * to one conversation; a seq exists only if its event does.
   */
  private async appendOnce(batches: AppendBatch[]): Promise<AppendResult[][]> {
    const rows: Record<string, unknown>[] = [];
    const sources: { conv: string; draft: EventDraft }[] = [];
    // Per batch and draft: the row it is sent as, or, for a (conv, sender, cid) repeated in this
    // call, the row of its first copy (stored once; the copies are its duplicates).
    const firstRow = new Map<string, number>();
    const plans = batches.map(({ conv, drafts }) =>
      drafts.map((d): { row: number; dup: boolean } => {
        const key = d.cid != null && d.from != null ? `${conv}\u0000${d.from}\u0000${d.cid}` : null;
        const first = key ? firstRow.get(key) : undefined;
        if (first !== undefined) return { row: first, dup: true };
        const i = rows.length;
        if (key) firstRow.set(key, i);
        rows.push({ i, conv, id: d.id, kind: d.kind, sender: d.from, cid: d.cid ?? null, ts: new Date(d.ts).toISOString(), data: d.data });
        sources.push({ conv, draft: d });
        return { row: i, dup: false };
      }),
    );
    if (rows.length === 0) return batches.map(() => []);
    type Out = { i?: number; seq: string | number; dup: RawRow | string | null; read: string | number | null };
    let out: Out[];
    if (rows.length === 1) {
      const r = rows[0]!;
      out = await this.database.query<Out>(APPEND_ONE_SQL, [r.conv, r.id, r.kind, r.sender, r.cid, r.ts, JSON.stringify(r.data)]);
    } else out = await this.database.query<Out>(APPEND_SQL, [JSON.stringify(rows)]);
    const byRow = new Array<AppendResult>(rows.length);
    for (const r of out) {
      const i = Number(r.i ?? 0);
      if (r.dup != null) {
        byRow[i] = { event: rawEvent(typeof r.dup === 'string' ? (JSON.parse(r.dup) as RawRow) : r.dup), duplicate: true };
      } else {
        const { conv, draft } = sources[i]!;
        byRow[i] = { event: { ...draft, conv, seq: Number(r.seq) }, duplicate: false };
        if (r.read != null) byRow[i]!.senderRead = Number(r.read);
      }
    }
    return plans.map((plan) => plan.map((p) => (p.dup ? { event: byRow[p.row]!.event, duplicate: true } : byRow[p.row]!)));
  }

  async read(conv: string, range: ReadRange): Promise<StoredEvent[]> {
    // Constant statements (prepared once per connection): catch-up and gap fill read here.
    if (range.afterSeq == null && range.beforeSeq != null) {
      const rows = await this.database.query<RawRow>(READ_NEWEST_BEFORE_SQL, [conv, range.beforeSeq, range.limit]);
      return rows.map(rawEvent).reverse();
    }
    const rows = await this.database.query<RawRow>(READ_RANGE_SQL, [
      conv,
      range.afterSeq ?? 0,
      range.beforeSeq ?? Number.MAX_SAFE_INTEGER,
      range.limit,
    ]);
    return rows.map(rawEvent);
  }

  async lastSeqs(convs: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>(convs.map((c) => [c, 0]));
    if (!convs.length) return out;
    const rows = await this.database.query<{ conversation_id: string; last_seq: string | number }>(LAST_SEQS_SQL, [JSON.stringify(convs)]);
    for (const r of rows) out.set(r.conversation_id, Number(r.last_seq));
    return out;
  }

  async heads(convs: string[]): Promise<Map<string, LogHead>> {
    const out = new Map<string, LogHead>(convs.map((c) => [c, { seq: 0, epoch: 1 }]));
    if (!convs.length) return out;
    type Row = { conversation_id: string; last_seq: string | number; epoch: string | number; restored_seq: string | number | null };
    const rows = await this.database.query<Row>(HEADS_SQL, [JSON.stringify(convs)]);
    for (const r of rows) {
      const head: LogHead = { seq: Number(r.last_seq), epoch: Number(r.epoch) };
      if (r.restored_seq != null) head.restoredSeq = Number(r.restored_seq);
      out.set(r.conversation_id, head);
    }
    return out;
  }

  rewind(convs: string[], now = Date.now()): Promise<RewindOutcome> {
    return rewindLogs(this.database, now, convs);
  }

  async lastMessages(convs: string[]): Promise<Map<string, StoredEvent>> {
    const out = new Map<string, StoredEvent>();
    if (!convs.length) return out;
    const rows = rowsOf<RawRow>(
      await this.db.execute(sql`
        select distinct on (conversation_id) * from log_events
        where conversation_id in (${sql.join(
          convs.map((c) => sql`${c}`),
          sql`, `,
        )}) and kind = 'message'
        order by conversation_id, seq desc`),
    );
    for (const r of rows) out.set(r.conversation_id, rawEvent(r));
    return out;
  }

  async redact(conv: string, seqs: number[]) {
    if (!seqs.length) return;
    await this.db
      .update(logEvents)
      .set({ data: sql.raw(REDACTED_DATA_SQL) })
      .where(and(eq(logEvents.conversationId, conv), inArray(logEvents.seq, seqs)));
  }

  async seqsBySender(conv: string, from: string): Promise<number[]> {
    const rows = await this.db
      .select({ seq: logEvents.seq })
      .from(logEvents)
      .where(and(eq(logEvents.conversationId, conv), eq(logEvents.senderId, from), sql.raw(CARRIES_TEXT_SQL)));
    return rows.map((r) => Number(r.seq));
  }

  async close() {}
}
