import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import cassandra from 'cassandra-driver';
import type { Logger } from '../observability/logger.ts';
import type { AppendResult, EventDraft, MessageStore, ReadRange, StoredEvent } from './message-store.ts';

type Row = cassandra.types.Row;
const { consistencies } = cassandra.types;

/** Seqs per `events` partition: bucket = floor(seq / BUCKET_SIZE). Changing it needs a data migration. */
export const BUCKET_SIZE = 1000;
export const cassandraMigrationsFolder = fileURLToPath(new URL('../../../db/cassandra', import.meta.url));

export interface CassandraMessageStoreOptions {
  contactPoints: string[];
  localDataCenter: string;
  keyspace: string;
  replicationFactor: number;
  logger: Logger;
  /**
   * An append waits for the seqs below its own to become durable before it publishes its own
   * (durable_seq). When they make no progress for this long, their appender is taken for dead
   * and they are filled with void events. Default 15 s.
   */
  takeoverMs?: number;
  /** How long an append that has written nothing waits for another holding the same cid, then fails (retryable). Default 5 s. */
  claimWaitMs?: number;
  /**
   * Age (by the claimer's clock) after which a cid claim whose event never appeared is taken
   * over: how long the resend of a message whose hub died mid-append can be refused. Clocks of
   * the hubs must agree to well within half of it. Default 20 s.
   */
  claimStaleMs?: number;
}

/** The store could not complete an operation; appends that throw it are safe to retry with the same cids. */
export class MessageStoreUnavailableError extends Error {
  override name = 'MessageStoreUnavailableError';
}

const EVENT_COLS = 'conversation_id, seq, id, kind, sender_id, cid, ts, data';
const Q = {
  insertEvent: `INSERT INTO events (conversation_id, bucket, seq, id, kind, sender_id, cid, ts, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  eventRange: `SELECT ${EVENT_COLS} FROM events WHERE conversation_id = ? AND bucket = ? AND seq >= ? AND seq <= ?`,
  eventRangeDesc: `SELECT ${EVENT_COLS} FROM events WHERE conversation_id = ? AND bucket = ? AND seq <= ? ORDER BY seq DESC`,
  eventsIn: `SELECT ${EVENT_COLS} FROM events WHERE conversation_id = ? AND bucket = ? AND seq IN ?`,
  eventOne: `SELECT ${EVENT_COLS} FROM events WHERE conversation_id = ? AND bucket = ? AND seq = ?`,
  seqRange: `SELECT seq FROM events WHERE conversation_id = ? AND bucket = ? AND seq >= ? AND seq <= ?`,
  setData: `UPDATE events SET data = ? WHERE conversation_id = ? AND bucket = ? AND seq = ?`,
  headInsert: `INSERT INTO conversation_heads (conversation_id, last_seq, alloc_id) VALUES (?, ?, ?) IF NOT EXISTS`,
  headCas: `UPDATE conversation_heads SET last_seq = ?, alloc_id = ? WHERE conversation_id = ? IF last_seq = ?`,
  headAlloc: `SELECT last_seq, alloc_id FROM conversation_heads WHERE conversation_id = ?`,
  head: `SELECT durable_seq, last_message_seq FROM conversation_heads WHERE conversation_id = ?`,
  durable: `UPDATE conversation_heads USING TIMESTAMP ? SET durable_seq = ? WHERE conversation_id = ?`,
  durableMsg: `UPDATE conversation_heads USING TIMESTAMP ? SET durable_seq = ?, last_message_seq = ? WHERE conversation_id = ?`,
  claim: `INSERT INTO event_cids (conversation_id, sender_id, cid, event_id, claimed_at) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS`,
  claimRow: `SELECT event_id, claimed_at, seq, seq_event_id FROM event_cids WHERE conversation_id = ? AND sender_id = ? AND cid = ?`,
  claimSteal: `UPDATE event_cids SET event_id = ?, claimed_at = ? WHERE conversation_id = ? AND sender_id = ? AND cid = ? IF event_id = ?`,
  claimSeq: `UPDATE event_cids SET seq = ?, seq_event_id = ? WHERE conversation_id = ? AND sender_id = ? AND cid = ?`,
  claimRelease: `DELETE FROM event_cids WHERE conversation_id = ? AND sender_id = ? AND cid = ? IF event_id = ?`,
  senderInsert: `INSERT INTO sender_messages (conversation_id, sender_id, seq) VALUES (?, ?, ?)`,
  senderSeqs: `SELECT seq FROM sender_messages WHERE conversation_id = ? AND sender_id = ?`,
};

const bucketOf = (seq: number) => Math.floor(seq / BUCKET_SIZE);
const num = (v: unknown): number | null => (v == null ? null : typeof v === 'number' ? v : (v as cassandra.types.Long).toNumber());
const str = (v: unknown): string | null => (v == null ? null : String(v));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const keyOf = (d: EventDraft) => (d.cid != null && d.from != null ? `${d.from}\u0000${d.cid}` : null);

let lastMicros = 0;
/** Write timestamps in µs, strictly increasing within the process. */
function nowMicros(): number {
  lastMicros = Math.max(Date.now() * 1000, lastMicros + 1);
  return lastMicros;
}

/** The same id for the void filler of a seq whoever writes it, so concurrent fillers agree. */
function voidId(conv: string, seq: number): string {
  const h = createHash('sha1').update(`hubbub:void:${conv}:${seq}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

const toEvent = (r: Row): StoredEvent => {
  const e: StoredEvent = {
    conv: String(r.get('conversation_id')),
    seq: num(r.get('seq'))!,
    id: String(r.get('id')),
    kind: r.get('kind') as StoredEvent['kind'],
    from: str(r.get('sender_id')),
    ts: (r.get('ts') as Date).getTime(),
    data: JSON.parse(r.get('data') as string) as Record<string, unknown>,
  };
  const cid = r.get('cid') as string | null;
  if (cid != null) e.cid = cid;
  return e;
};

async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Bounded map: forgets the oldest entries (these are only hints that save a round trip). */
function remember(m: Map<string, number>, k: string, v: number) {
  if ((m.get(k) ?? -1) >= v) return;
  m.delete(k);
  m.set(k, v);
  if (m.size > 50_000) m.delete(m.keys().next().value!);
}

interface Allocation {
  start: number;
  end: number;
  /** Write timestamp of the events (µs), fixed before the first write so retries cannot outrun a void filler. */
  ts: number;
  at: number;
}

/**
 * The message store on Cassandra (or ScyllaDB). How an append works:
 * 1. Each (from, cid) is claimed with INSERT ... IF NOT EXISTS in `event_cids` (one LWT per
 *    keyed draft, all in parallel). A cid that another append holds is left out of this append's
 *    seqs; once this append's own events are written, it waits briefly for the holder's event
 *    and returns it as the duplicate (waiting earlier could deadlock two crossed batches).
 * 2. One CAS on the conversation's head row (`IF last_seq = ?`) allocates the seqs of the whole
 *    batch; contention retries with jittered backoff.
 * 3. The events (an unlogged batch per bucket partition) and the indexes are written at
 *    LOCAL_QUORUM with one client timestamp, retried, and voided if they keep failing.
 * 4. Once every seq below its own is durable, the append raises `durable_seq` to its last seq
 *    and resolves. Readers and lastSeqs never look past durable_seq, so nobody sees a hole or
 *    waits on a seq that is not written yet, and concurrent appenders publish in seq order.
 *    Seqs that a crashed appender allocated but never wrote are filled with void events by the
 *    next append once durable_seq has not moved for `takeoverMs`.
 * Remaining risks: a hub whose clock runs ahead of another's by more than half of takeoverMs
 * or claimStaleMs can defeat the guards that keep a late write from racing a void filler or a
 * claim takeover (the late append then fails, but a reader may see a void replaced by the
 * message); an append of only cids that another live append holds fails after claimWaitMs
 * (retryable); an append that has written events waits instead, up to claimStaleMs.
 */
export class CassandraMessageStore implements MessageStore {
  private readonly client: cassandra.Client;
  private readonly logger: Logger;
  private readonly takeoverMs: number;
  private readonly claimWaitMs: number;
  private readonly claimStaleMs: number;
  /** Last known allocated seq per conversation: the expected value of the next CAS. */
  private readonly lastSeqHint = new Map<string, number>();
  /** A lower bound of durable_seq per conversation. */
  private readonly durableHint = new Map<string, number>();

  constructor(private readonly opts: CassandraMessageStoreOptions) {
    if (!/^[a-z][a-z0-9_]{0,47}$/.test(opts.keyspace)) throw new Error(`invalid Cassandra keyspace name: ${opts.keyspace}`);
    this.logger = opts.logger;
    this.takeoverMs = opts.takeoverMs ?? 15_000;
    this.claimWaitMs = opts.claimWaitMs ?? 5_000;
    this.claimStaleMs = opts.claimStaleMs ?? 20_000;
    this.client = new cassandra.Client({
      contactPoints: opts.contactPoints,
      localDataCenter: opts.localDataCenter,
      keyspace: opts.keyspace,
      // SERIAL, not LOCAL_SERIAL: seq allocation must be linearizable across data centers.
      queryOptions: { consistency: consistencies.localQuorum, serialConsistency: consistencies.serial, prepare: true },
    });
  }

  // ---- schema ---------------------------------------------------------------------------

  /** Creates the keyspace, then applies each db/cassandra/*.cql file once, in name order. */
  async init() {
    const { keyspace, replicationFactor } = this.opts;
    const boot = new cassandra.Client({ contactPoints: this.opts.contactPoints, localDataCenter: this.opts.localDataCenter });
    try {
      await boot.execute(
        `CREATE KEYSPACE IF NOT EXISTS ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': ${replicationFactor}}`,
      );
    } finally {
      await boot.shutdown();
    }
    await this.client.connect();
    await this.client.execute('CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamp, owner uuid)', [], { prepare: false });
    const files = (await readdir(cassandraMigrationsFolder)).filter((f) => f.endsWith('.cql')).sort();
    const pending = async () => {
      const done = new Set((await this.all('SELECT name FROM schema_migrations', [])).map((r) => r.get('name') as string));
      return files.filter((f) => !done.has(f));
    };
    if (!(await pending()).length) return;
    // Replicas starting together must not run DDL concurrently (Cassandra 5.0 can then end up
    // with two ids for one table), so one takes a lock row; its TTL frees it if that one dies.
    const owner = cassandra.types.Uuid.random().toString();
    const deadline = Date.now() + 120_000;
    while (!(await this.q(`INSERT INTO schema_migrations (name, applied_at, owner) VALUES ('~lock', ?, ?) IF NOT EXISTS USING TTL 60`, [new Date(), owner])).wasApplied()) {
      if (Date.now() > deadline) throw new MessageStoreUnavailableError('timed out waiting for the Cassandra migration lock');
      await sleep(200);
    }
    try {
      for (const file of await pending()) {
        const text = await readFile(path.join(cassandraMigrationsFolder, file), 'utf8');
        const statements = text
          .split('\n')
          .filter((l) => !l.trim().startsWith('--'))
          .join('\n')
          .split(/;\s*$/m)
          .map((s) => s.trim())
          .filter(Boolean);
        for (const s of statements) await this.client.execute(s, [], { prepare: false });
        await this.q('INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)', [file, new Date()]);
        this.logger.info({ file, keyspace }, 'applied Cassandra migration');
      }
    } finally {
      await this.q(`DELETE FROM schema_migrations WHERE name = '~lock' IF owner = ?`, [owner]).catch(() => {});
    }
  }

  async close() {
    await this.client.shutdown();
  }

  // ---- append ---------------------------------------------------------------------------

  async append(conv: string, drafts: EventDraft[]): Promise<AppendResult[]> {
    if (drafts.length === 0) return [];
    const results: (AppendResult | undefined)[] = new Array(drafts.length);
    // The same cid twice in one batch stores once: later copies take the first one's result.
    const firstOf = new Map<string, number>();
    const copyOf = new Map<number, number>();
    drafts.forEach((d, i) => {
      const k = keyOf(d);
      if (k == null) return;
      const first = firstOf.get(k);
      if (first === undefined) firstOf.set(k, i);
      else copyOf.set(i, first);
    });

    let todo = drafts.map((_, i) => i).filter((i) => !copyOf.has(i));
    let wrote = false;
    while (todo.length) {
      const t0 = performance.now();
      const keyed = todo.filter((i) => keyOf(drafts[i]!) != null);
      const claims = await Promise.allSettled(keyed.map((i) => this.tryClaim(conv, drafts[i]!)));
      const held = new Set<number>();
      const heldByOthers = new Map<number, Row>();
      let claimError: unknown;
      claims.forEach((c, j) => {
        const i = keyed[j]!;
        if (c.status === 'rejected') claimError ??= c.reason;
        else if (c.value) heldByOthers.set(i, c.value);
        else held.add(i);
      });
      const heldDrafts = [...held].map((i) => drafts[i]!);
      if (claimError) {
        await this.releaseClaims(conv, heldDrafts);
        throw claimError;
      }

      const fresh = todo.filter((i) => !heldByOthers.has(i));
      if (fresh.length) {
        let alloc: Allocation;
        try {
          alloc = await this.allocate(conv, fresh.length);
        } catch (err) {
          await this.releaseClaims(conv, heldDrafts);
          throw err;
        }
        const events = fresh.map((i, k): StoredEvent => ({ ...drafts[i]!, conv, seq: alloc.start + k }));
        await this.writeAppended(conv, events, heldDrafts, alloc, t0);
        fresh.forEach((i, k) => (results[i] = { event: events[k]!, duplicate: false }));
        wrote = true;
      }

      // Only now, with nothing of ours left unwritten, wait for cids that other appends hold:
      // waiting while holding claims would deadlock two appends that hold each other's cids.
      // Once this append has written events it must not fail any more (they are durable, and the
      // caller would never broadcast them), so it waits until the claim resolves or goes stale.
      const others = [...heldByOthers];
      const patience = wrote ? Infinity : this.claimWaitMs;
      const outcomes = await Promise.all(others.map(([i, row]) => this.awaitClaim(conv, drafts[i]!, row, patience)));
      todo = [];
      others.forEach(([i], j) => {
        const event = outcomes[j];
        if (event) results[i] = { event, duplicate: true };
        else todo.push(i); // released or taken over: append it in another round
      });
    }
    for (const [i, first] of copyOf) results[i] = { event: results[first]!.event, duplicate: true };
    return results as AppendResult[];
  }

  /** Writes allocated events and their indexes, then publishes them by raising durable_seq. */
  private async writeAppended(conv: string, events: StoredEvent[], held: EventDraft[], alloc: Allocation, claimedAt: number) {
    // A claim taker or a hole filler acts only after claimStaleMs / takeoverMs, so writes that
    // finish within half of that cannot be overwritten by one of them. Later ones do not count.
    const inTime = () =>
      (!held.length || performance.now() - claimedAt < this.claimStaleMs / 2) && performance.now() - alloc.at < this.takeoverMs / 2;
    let written = false;
    let lastErr: unknown = new MessageStoreUnavailableError(`append to ${conv} took too long to start writing`);
    for (let attempt = 0; attempt < 3 && inTime(); attempt++) {
      if (attempt) await sleep(50 * 4 ** (attempt - 1) * (0.5 + Math.random()));
      try {
        await this.writeEvents(conv, events, alloc.ts);
        written = true;
        break;
      } catch (err) {
        lastErr = err;
        this.logger.warn({ err: (err as Error).message, conv, attempt }, 'cassandra event write failed');
      }
    }
    if (!written) {
      await this.abandon(conv, alloc, held);
      throw new MessageStoreUnavailableError(`could not write events of ${conv}`, { cause: lastErr });
    }
    if (!inTime()) {
      // Written, but late: a hole filler may have voided some of them meanwhile, so this append
      // cannot report success. A retry with the same cids finds the claims and returns what stands.
      throw new MessageStoreUnavailableError(`append to ${conv} took too long; retry`);
    }
    const lastMessage = events.findLast((e) => e.kind === 'message')?.seq;
    await this.publish(conv, alloc, lastMessage);
  }

  private async writeEvents(conv: string, events: StoredEvent[], ts: number) {
    const jobs: Promise<unknown>[] = [];
    const opts = { prepare: true, logged: false, timestamp: ts, isIdempotent: true };
    // One unlogged batch per bucket partition (chunked so a batch stays well below the mutation size limit).
    let batch: { query: string; params: unknown[] }[] = [];
    let bytes = 0;
    events.forEach((e, i) => {
      const data = JSON.stringify(e.data);
      batch.push({ query: Q.insertEvent, params: [conv, bucketOf(e.seq), e.seq, e.id, e.kind, e.from, e.cid ?? null, new Date(e.ts), data] });
      bytes += data.length + 200;
      const next = events[i + 1];
      if (!next || bucketOf(next.seq) !== bucketOf(e.seq) || batch.length >= 200 || bytes > 512_000) {
        jobs.push(this.client.batch(batch, opts));
        batch = [];
        bytes = 0;
      }
    });
    const bySender = new Map<string, number[]>();
    for (const e of events) {
      if (e.cid != null && e.from != null) jobs.push(this.q(Q.claimSeq, [e.seq, e.id, conv, e.from, e.cid], { timestamp: ts, isIdempotent: true }));
      if (e.kind === 'message' && e.from != null) bySender.set(e.from, [...(bySender.get(e.from) ?? []), e.seq]);
    }
    for (const [from, seqs] of bySender) {
      jobs.push(this.client.batch(seqs.map((s) => ({ query: Q.senderInsert, params: [conv, from, s] })), opts));
    }
    await Promise.all(jobs);
  }

  /**
   * After the writes failed: fill the seqs with void events, so no reader waits on them, and
   * free the cids for a retry. Remaining risk: when Cassandra refuses these writes too (or the
   * process dies before this), the seqs stay unwritten; durable_seq then stops below them, so
   * no reader sees the hole, and the next append to the conversation fills it after takeoverMs
   * (publish → waitDurable). A conversation that never gets another append keeps the hole.
   */
  private async abandon(conv: string, alloc: Allocation, held: EventDraft[]) {
    const seqs = Array.from({ length: alloc.end - alloc.start + 1 }, (_, k) => alloc.start + k);
    try {
      await this.writeVoids(conv, seqs);
      this.logger.warn({ conv, from: alloc.start, to: alloc.end }, 'append failed; its seqs were filled with void events');
    } catch (err) {
      this.logger.error({ err: (err as Error).message, conv, from: alloc.start, to: alloc.end }, 'append failed and its seqs could not be voided');
      await this.releaseClaims(conv, held);
      return;
    }
    await this.releaseClaims(conv, held);
    await this.publish(conv, alloc, undefined).catch((err) =>
      this.logger.warn({ err: (err as Error).message, conv }, 'could not publish voided seqs'),
    );
  }

  private async writeVoids(conv: string, seqs: number[]) {
    if (!seqs.length) return;
    const ts = nowMicros();
    const byBucket = new Map<number, number[]>();
    for (const s of seqs) byBucket.set(bucketOf(s), [...(byBucket.get(bucketOf(s)) ?? []), s]);
    await Promise.all(
      [...byBucket].map(([b, ss]) =>
        this.client.batch(
          ss.map((s) => ({ query: Q.insertEvent, params: [conv, b, s, voidId(conv, s), 'system', null, null, new Date(), '{"void":true}'] })),
          { prepare: true, logged: false, timestamp: ts, isIdempotent: true },
        ),
      ),
    );
  }

  /** Raises durable_seq to the allocation's end once every seq before it is durable. */
  private async publish(conv: string, alloc: Allocation, lastMessage: number | undefined) {
    await this.waitDurable(conv, alloc.start - 1);
    const [query, params] =
      lastMessage === undefined
        ? [Q.durable, [alloc.end, alloc.end, conv]]
        : [Q.durableMsg, [alloc.end, alloc.end, lastMessage, conv]];
    for (let attempt = 0; ; attempt++) {
      try {
        await this.q(query, params, { isIdempotent: true });
        break;
      } catch (err) {
        if (attempt >= 2) throw new MessageStoreUnavailableError(`could not publish seqs of ${conv}`, { cause: err });
        await sleep(50 * 4 ** attempt);
      }
    }
    remember(this.durableHint, conv, alloc.end);
  }

  private async waitDurable(conv: string, target: number) {
    if (target <= 0 || (this.durableHint.get(conv) ?? 0) >= target) return;
    let seen = -1;
    let since = performance.now();
    for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
      const durable = (await this.head(conv)).durable;
      if (durable >= target) {
        remember(this.durableHint, conv, durable);
        return;
      }
      if (durable !== seen) {
        seen = durable;
        since = performance.now();
      } else if (performance.now() - since >= this.takeoverMs) {
        await this.fillHoles(conv, durable + 1, target);
        return;
      }
      await sleep(delay * (0.5 + Math.random()));
    }
  }

  /** Voids the unwritten seqs in [from, to]: their appender stopped making progress (crashed). */
  private async fillHoles(conv: string, from: number, to: number) {
    const present = new Set<number>();
    for (let b = bucketOf(from); b <= bucketOf(to); b++) {
      const rows = await this.all(Q.seqRange, [conv, b, Math.max(from, b * BUCKET_SIZE), Math.min(to, b * BUCKET_SIZE + BUCKET_SIZE - 1)]);
      for (const r of rows) present.add(num(r.get('seq'))!);
    }
    const missing: number[] = [];
    for (let s = from; s <= to; s++) if (!present.has(s)) missing.push(s);
    this.logger.warn({ conv, from, to, missing: missing.length }, 'seqs stalled; filling their holes with void events');
    await this.writeVoids(conv, missing);
  }

  // ---- seq allocation -------------------------------------------------------------------

  private async allocate(conv: string, n: number): Promise<Allocation> {
    const allocId = cassandra.types.Uuid.random().toString();
    let expected = this.lastSeqHint.get(conv);
    const deadline = performance.now() + 30_000;
    for (let attempt = 0; ; attempt++) {
      if (performance.now() > deadline) throw new MessageStoreUnavailableError(`seq allocation for ${conv} kept failing`);
      if (attempt > 1) await sleep(Math.random() * Math.min(100, 2 ** attempt));
      let applied: boolean;
      let current: number | undefined;
      try {
        const rs =
          expected === undefined
            ? await this.q(Q.headInsert, [conv, n, allocId])
            : await this.q(Q.headCas, [expected + n, allocId, conv, expected]);
        applied = rs.wasApplied();
        current = num(rs.first()?.get('last_seq')) ?? undefined;
      } catch (err) {
        // Outcome unknown (e.g. a CAS write timeout): a SERIAL read finishes any in-flight round
        // and tells whether ours won. If ours was applied but overtaken since, its seqs become a
        // hole that the hole filler voids.
        this.logger.warn({ err: (err as Error).message, conv, attempt }, 'seq CAS failed; checking its outcome');
        let row: Row | undefined;
        try {
          row = (await this.q(Q.headAlloc, [conv], { consistency: consistencies.serial })).first();
        } catch {
          throw new MessageStoreUnavailableError(`seq allocation for ${conv} failed`, { cause: err });
        }
        if (!row) {
          expected = undefined;
          continue;
        }
        applied = str(row.get('alloc_id')) === allocId;
        current = num(row.get('last_seq')) ?? undefined;
        if (applied) expected = current! - n;
      }
      if (applied) {
        const end = (expected ?? 0) + n;
        remember(this.lastSeqHint, conv, end);
        return { start: end - n + 1, end, ts: nowMicros(), at: performance.now() };
      }
      expected = current;
    }
  }

  // ---- idempotency ----------------------------------------------------------------------

  /** Claims (conv, from, cid) for this draft: undefined when it is ours, else the claim row that holds it. */
  private async tryClaim(conv: string, d: EventDraft): Promise<Row | undefined> {
    const rs = await this.q(Q.claim, [conv, d.from, d.cid, d.id, new Date()]);
    if (rs.wasApplied()) return undefined;
    const row = rs.first();
    // Our own id: an earlier round took the claim over for this draft.
    return String(row.get('event_id')) === d.id ? undefined : row;
  }

  /**
   * Waits until the append holding a draft's cid has written its event, and returns that event.
   * Returns null when the claim was released, or was stale and is now ours: the draft is then
   * appended in another round.
   */
  private async awaitClaim(conv: string, d: EventDraft, first: Row, patience: number): Promise<StoredEvent | null> {
    const key = [conv, d.from, d.cid];
    const waitStart = performance.now();
    let row: Row | undefined = first;
    for (let delay = 2; row; delay = Math.min(delay * 2, 100)) {
      // A null holder: a released claim whose seq cells outlived the delete (clock skew).
      const holder = str(row.get('event_id'));
      if (holder === d.id) return null;
      const seq = holder != null && str(row.get('seq_event_id')) === holder ? num(row.get('seq')) : null;
      const event = seq != null ? await this.readOne(conv, seq) : null;
      if (event?.id === holder) return event;
      const voided = event != null; // the holder's seq holds a void filler: its append failed
      const claimedAt = (row.get('claimed_at') as Date | null)?.getTime() ?? 0;
      if (holder == null || voided || Date.now() - claimedAt > this.claimStaleMs) {
        // The holder died or gave up. Void its seq first when known, so that a late write of
        // the holder's loses against it (later timestamp) instead of duplicating the message.
        if (seq != null && !voided) await this.writeVoids(conv, [seq]);
        if ((await this.q(Q.claimSteal, [d.id, new Date(), ...key, holder])).wasApplied()) {
          this.logger.warn({ conv, cid: d.cid }, 'took over a stale cid claim');
          return null;
        }
      } else if (performance.now() - waitStart > patience) {
        throw new MessageStoreUnavailableError(`cid ${d.cid} in ${conv} is held by an append still in progress; retry`);
      } else {
        await sleep(delay);
      }
      row = (await this.q(Q.claimRow, key)).first();
    }
    return null;
  }

  private async releaseClaims(conv: string, held: EventDraft[]) {
    await Promise.all(
      held.map((d) =>
        this.q(Q.claimRelease, [conv, d.from, d.cid, d.id]).catch((err) =>
          this.logger.warn({ err: (err as Error).message, conv, cid: d.cid }, 'could not release a cid claim'),
        ),
      ),
    );
  }

  // ---- reads ----------------------------------------------------------------------------

  async read(conv: string, range: ReadRange): Promise<StoredEvent[]> {
    const limit = Math.floor(range.limit);
    if (!(limit > 0)) return [];
    const { durable } = await this.head(conv);
    let lo = Math.max(1, Math.floor(range.afterSeq ?? 0) + 1);
    let hi = Math.min(durable, Math.ceil(range.beforeSeq ?? Infinity) - 1);
    if (lo > hi) return [];
    // Every seq up to durable_seq exists, so the bounds can be computed before reading.
    if (range.afterSeq == null && range.beforeSeq != null) lo = Math.max(lo, hi - limit + 1);
    else hi = Math.min(hi, lo + limit - 1);
    const buckets: number[] = [];
    for (let b = bucketOf(lo); b <= bucketOf(hi); b++) buckets.push(b);
    const parts = await mapLimit(buckets, 4, (b) =>
      this.all(Q.eventRange, [conv, b, Math.max(lo, b * BUCKET_SIZE), Math.min(hi, b * BUCKET_SIZE + BUCKET_SIZE - 1)]),
    );
    return parts.flat().map(toEvent);
  }

  async lastSeqs(convs: string[]): Promise<Map<string, number>> {
    const unique = [...new Set(convs)];
    const heads = await mapLimit(unique, 64, (c) => this.head(c));
    return new Map(unique.map((c, i) => [c, heads[i]!.durable]));
  }

  async lastMessages(convs: string[]): Promise<Map<string, StoredEvent>> {
    const unique = [...new Set(convs)];
    const found = await mapLimit(unique, 64, async (c) => {
      const { durable, lastMessage } = await this.head(c);
      if (lastMessage == null) return null;
      const e = await this.readOne(c, lastMessage);
      return e?.kind === 'message' ? e : this.scanBackForMessage(c, Math.min(lastMessage, durable));
    });
    const out = new Map<string, StoredEvent>();
    unique.forEach((c, i) => found[i] && out.set(c, found[i]!));
    return out;
  }

  /** Fallback when last_message_seq does not point at a message (not expected; kept for safety). */
  private async scanBackForMessage(conv: string, from: number): Promise<StoredEvent | null> {
    for (let b = bucketOf(from); b >= 0; b--) {
      const rows = await this.all(Q.eventRangeDesc, [conv, b, from]);
      const hit = rows.find((r) => r.get('kind') === 'message');
      if (hit) return toEvent(hit);
    }
    return null;
  }

  async redact(conv: string, seqs: number[]) {
    const byBucket = new Map<number, number[]>();
    for (const s of new Set(seqs)) byBucket.set(bucketOf(s), [...(byBucket.get(bucketOf(s)) ?? []), s]);
    await mapLimit([...byBucket], 4, async ([b, ss]) => {
      const rows = await this.all(Q.eventsIn, [conv, b, ss]);
      // Only rows that exist: an UPDATE of a missing seq would create a ghost row.
      await mapLimit(rows, 32, (r) => {
        const data = { ...(JSON.parse(r.get('data') as string) as Record<string, unknown>), body: null, redacted: true };
        return this.q(Q.setData, [JSON.stringify(data), conv, b, r.get('seq')], { isIdempotent: true });
      });
    });
  }

  async seqsBySender(conv: string, from: string): Promise<number[]> {
    const candidates = (await this.all(Q.senderSeqs, [conv, from])).map((r) => num(r.get('seq'))!);
    const { durable } = await this.head(conv);
    // The index may name seqs of failed (voided) appends: keep those whose event says so.
    const byBucket = new Map<number, number[]>();
    for (const s of candidates) if (s <= durable) byBucket.set(bucketOf(s), [...(byBucket.get(bucketOf(s)) ?? []), s]);
    const parts = await mapLimit([...byBucket], 4, ([b, ss]) => this.all(Q.eventsIn, [conv, b, ss]));
    return parts
      .flat()
      .map(toEvent)
      .filter((e) => e.kind === 'message' && e.from === from.toLowerCase())
      .map((e) => e.seq);
  }

  // ---- helpers --------------------------------------------------------------------------

  private async head(conv: string): Promise<{ durable: number; lastMessage: number | null }> {
    const row = (await this.q(Q.head, [conv], { isIdempotent: true })).first();
    return { durable: num(row?.get('durable_seq')) ?? 0, lastMessage: num(row?.get('last_message_seq')) };
  }

  private async readOne(conv: string, seq: number): Promise<StoredEvent | null> {
    const row = (await this.q(Q.eventOne, [conv, bucketOf(seq), seq], { isIdempotent: true })).first();
    return row ? toEvent(row) : null;
  }

  private q(query: string, params: unknown[], opts: cassandra.QueryOptions = {}) {
    return this.client.execute(query, params, { prepare: true, ...opts });
  }

  /** Every row of a query, page by page. */
  private async all(query: string, params: unknown[]): Promise<Row[]> {
    const rows: Row[] = [];
    let pageState: string | undefined;
    do {
      const rs = await this.client.execute(query, params, { prepare: true, fetchSize: 5000, pageState, isIdempotent: true });
      rows.push(...rs.rows);
      pageState = rs.pageState ?? undefined;
    } while (pageState);
    return rows;
  }
}
