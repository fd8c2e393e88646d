import cassandra from 'cassandra-driver';
import type { Logger } from '../observability/logger.ts';
import { CidClaims } from './cassandra/cid-claims.ts';
import { Cql, keyOf, type Row, sleep } from './cassandra/cql.ts';
import { MessageStoreUnavailableError } from './cassandra/errors.ts';
import { EventLog } from './cassandra/event-log.ts';
import { EventReads } from './cassandra/event-reads.ts';
import { migrate } from './cassandra/schema.ts';
import { type Allocation, INLINE_CLAIMS, type Reservation, SeqAllocator } from './cassandra/seq-allocator.ts';
import type { AppendResult, EventDraft, MessageStore, ReadRange, StoredEvent } from './message-store.ts';

export { BUCKET_SIZE } from './cassandra/cql.ts';
export { MessageStoreUnavailableError } from './cassandra/errors.ts';
export { cassandraMigrationsFolder } from './cassandra/schema.ts';

const { consistencies } = cassandra.types;

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

/**
 * The message store on Cassandra (or ScyllaDB). Its parts live in ./cassandra/: schema.ts (the
 * migration runner), seq-allocator.ts, cid-claims.ts, event-log.ts (event writes, void fillers,
 * durable_seq), event-reads.ts, cql.ts (statements and helpers). How an append works:
 * 1. One conditional batch on the conversation's partition of `conversation_cids` allocates
 *    the seqs of the whole append (`UPDATE ... SET last_seq IF last_seq = ?`, static columns)
 *    and claims the (from, cid) of every keyed draft (INSERT ... IF NOT EXISTS, with the seq it
 *    gets): a single Paxos round however many drafts. It applies all or nothing: when last_seq
 *    moved it is retried with the current value (jittered backoff); a draft whose cid is
 *    already claimed leaves the batch (the failed batch returns the existing rows). An append of
 *    more than 100 keyed drafts claims them first, a conditional batch per 100, then allocates.
 *    A cid that another append holds is left out of this append's seqs; once this append's own
 *    events are written, it waits briefly for the holder's event and returns it as the
 *    duplicate (waiting earlier could deadlock two crossed batches).
 * 2. The events and their indexes (the claims' seqs, sender_messages) are written at
 *    LOCAL_QUORUM with one client timestamp as one unlogged batch (a few partitions), retried,
 *    and voided if they keep failing.
 * 3. Once every seq below its own is durable, the append raises `durable_seq` to its last seq
 *    and resolves. Readers and lastSeqs never look past durable_seq, so nobody sees a hole or
 *    waits on a seq that is not written yet, and concurrent appenders publish in seq order.
 *    Seqs that a crashed appender allocated but never wrote are filled with void events by the
 *    next append once durable_seq has not moved for `takeoverMs`.
 * So an append to one conversation costs one Paxos round whatever its size (before migration
 * 002: a claim per keyed draft in event_cids plus a CAS on conversation_heads), then two plain
 * writes (events with their indexes, durable_seq).
 * appendMany is not implemented: each conversation's rounds are on its own partitions, so one
 * call for several conversations would save no Paxos round over parallel appends, and the
 * EventWriter keeps more writes in flight for a store without it.
 * Remaining risks: a hub whose clock runs ahead of another's by more than half of takeoverMs
 * or claimStaleMs can defeat the guards that keep a late write from racing a void filler or a
 * claim takeover (the late append then fails, but a reader may see a void replaced by the
 * message); an append of only cids that another live append holds fails after claimWaitMs
 * (retryable); an append that has written events waits instead, up to claimStaleMs. Upgrading
 * past migration 002: stop the replicas of the older version first (they allocate from
 * conversation_heads.last_seq, and their claims in event_cids are only honoured once finished,
 * see CidClaims.adoptLegacy and SeqAllocator.seed); a conversation's claims share one
 * partition (~100 bytes each), which wants bucketing before conversations reach millions of messages.
 */
export class CassandraMessageStore implements MessageStore {
  private readonly cql: Cql;
  private readonly logger: Logger;
  private readonly takeoverMs: number;
  private readonly claimWaitMs: number;
  private readonly claimStaleMs: number;
  private readonly seqs: SeqAllocator;
  private readonly log: EventLog;
  private readonly claims: CidClaims;
  private readonly reads: EventReads;

  constructor(private readonly opts: CassandraMessageStoreOptions) {
    if (!/^[a-z][a-z0-9_]{0,47}$/.test(opts.keyspace)) throw new Error(`invalid Cassandra keyspace name: ${opts.keyspace}`);
    this.logger = opts.logger;
    this.takeoverMs = opts.takeoverMs ?? 15_000;
    this.claimWaitMs = opts.claimWaitMs ?? 5_000;
    this.claimStaleMs = opts.claimStaleMs ?? 20_000;
    this.cql = new Cql(
      new cassandra.Client({
        contactPoints: opts.contactPoints,
        localDataCenter: opts.localDataCenter,
        keyspace: opts.keyspace,
        // SERIAL, not LOCAL_SERIAL: seq allocation must be linearizable across data centers.
        queryOptions: { consistency: consistencies.localQuorum, serialConsistency: consistencies.serial, prepare: true },
      }),
    );
    this.seqs = new SeqAllocator(this.cql, this.logger);
    this.log = new EventLog(this.cql, this.logger, this.takeoverMs);
    this.claims = new CidClaims(this.cql, this.log, this.logger, this.claimStaleMs);
    this.reads = new EventReads(this.cql);
  }

  /** Creates the keyspace, then applies each db/cassandra/*.cql file once, in name order. */
  async init() {
    await migrate(this.cql, this.opts);
    await this.claims.init();
  }

  async close() {
    await this.cql.client.shutdown();
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
      const keyedDrafts = keyed.map((i) => drafts[i]!);
      await this.claims.adoptLegacy(conv, keyedDrafts);
      // Usually the cids are claimed in the round that allocates the seqs; a big append claims
      // them first, in chunks.
      const inline = keyed.length <= INLINE_CLAIMS;
      const heldByOthers = new Map<number, Row>();
      if (!inline) {
        const claims = await this.claims.claimAll(conv, keyedDrafts); // on failure it has released them
        claims.forEach((row, j) => row && heldByOthers.set(keyed[j]!, row));
      }
      const candidates = todo.filter((i) => !heldByOthers.has(i));
      let reservation: Reservation;
      try {
        reservation = await this.seqs.reserve(conv, candidates.map((i) => drafts[i]!), inline);
      } catch (err) {
        await this.claims.release(conv, keyedDrafts);
        throw err;
      }
      for (const [j, row] of reservation.heldByOthers) heldByOthers.set(candidates[j]!, row);
      const fresh = reservation.fresh.map((j) => candidates[j]!);
      const alloc = reservation.alloc;
      if (alloc) {
        const heldDrafts = fresh.map((i) => drafts[i]!).filter((d) => keyOf(d) != null);
        const events = fresh.map((i, k): StoredEvent => ({ ...drafts[i]!, conv, seq: alloc.start + k }));
        await this.writeAppended(conv, events, heldDrafts, alloc, t0, !inline);
        fresh.forEach((i, k) => (results[i] = { event: events[k]!, duplicate: false }));
        wrote = true;
      }

      // Only now, with nothing of ours left unwritten, wait for cids that other appends hold:
      // waiting while holding claims would deadlock two appends that hold each other's cids.
      // Once this append has written events it must not fail any more (they are durable, and the
      // caller would never broadcast them), so it waits until the claim resolves or goes stale.
      const others = [...heldByOthers];
      const patience = wrote ? Infinity : this.claimWaitMs;
      const outcomes = await Promise.all(others.map(([i, row]) => this.claims.awaitClaim(conv, drafts[i]!, row, patience)));
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
  private async writeAppended(conv: string, events: StoredEvent[], held: EventDraft[], alloc: Allocation, claimedAt: number, claimSeqs: boolean) {
    // A claim taker or a hole filler acts only after claimStaleMs / takeoverMs, so writes that
    // finish within half of that cannot be overwritten by one of them. Later ones do not count.
    const inTime = () =>
      (!held.length || performance.now() - claimedAt < this.claimStaleMs / 2) && performance.now() - alloc.at < this.takeoverMs / 2;
    let written = false;
    let lastErr: unknown = new MessageStoreUnavailableError(`append to ${conv} took too long to start writing`);
    for (let attempt = 0; attempt < 3 && inTime(); attempt++) {
      if (attempt) await sleep(50 * 4 ** (attempt - 1) * (0.5 + Math.random()));
      try {
        await this.writeEvents(conv, events, alloc.ts, claimSeqs);
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
    await this.log.publish(conv, alloc, lastMessage);
  }

  /** A method of its own so that tests can make the writes fail. */
  private writeEvents(conv: string, events: StoredEvent[], ts: number, claimSeqs: boolean) {
    return this.log.writeEvents(conv, events, ts, claimSeqs);
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
      await this.log.writeVoids(conv, seqs);
      this.logger.warn({ conv, from: alloc.start, to: alloc.end }, 'append failed; its seqs were filled with void events');
    } catch (err) {
      this.logger.error({ err: (err as Error).message, conv, from: alloc.start, to: alloc.end }, 'append failed and its seqs could not be voided');
      await this.claims.release(conv, held);
      return;
    }
    await this.claims.release(conv, held);
    await this.log.publish(conv, alloc, undefined).catch((err) =>
      this.logger.warn({ err: (err as Error).message, conv }, 'could not publish voided seqs'),
    );
  }

  // ---- reads ----------------------------------------------------------------------------

  read(conv: string, range: ReadRange): Promise<StoredEvent[]> {
    return this.reads.read(conv, range);
  }

  lastSeqs(convs: string[]): Promise<Map<string, number>> {
    return this.reads.lastSeqs(convs);
  }

  lastMessages(convs: string[]): Promise<Map<string, StoredEvent>> {
    return this.reads.lastMessages(convs);
  }

  redact(conv: string, seqs: number[]): Promise<void> {
    return this.reads.redact(conv, seqs);
  }

  seqsBySender(conv: string, from: string): Promise<number[]> {
    return this.reads.seqsBySender(conv, from);
  }
}
