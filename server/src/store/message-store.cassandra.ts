import cassandra from 'cassandra-driver';
import type { Logger } from '../observability/logger.ts';
import { Appender } from './cassandra/appender.ts';
import { CidClaims } from './cassandra/cid-claims.ts';
import { Cql, mapLimit } from './cassandra/cql.ts';
import { EventLog } from './cassandra/event-log.ts';
import { EventReads } from './cassandra/event-reads.ts';
import { Leases } from './cassandra/leases.ts';
import { rewindEpochs } from './cassandra/log-epochs.ts';
import { migrate } from './cassandra/schema.ts';
import type {
  AppendBatch,
  AppendResult,
  EventDraft,
  LogHead,
  MessageStore,
  ReadRange,
  RewindOutcome,
  StoredEvent,
} from './message-store.ts';

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
   * How long a store instance stays alive without renewing its liveness row; a conversation
   * lease of an instance silent for longer is taken over. Also: seqs allocated before leases
   * that make no progress for this long are voided. Default 15 s.
   */
  takeoverMs?: number;
  /** How long an append waits for another live instance to hand a conversation over, then fails (retryable). Default 5 s. */
  handoverWaitMs?: number;
  /** A lease not used for this long is given back. Default 2 s. */
  leaseIdleMs?: number;
  /** How often an instance looks for hand-over requests. Default 10 ms. */
  handoverPollMs?: number;
}

/**
 * The message store on Cassandra (or ScyllaDB). Its parts live in ./cassandra/: schema.ts (the
 * migration runner), leases.ts (who may append to a conversation, and its seqs), appender.ts
 * (append and appendMany), cid-claims.ts, event-log.ts (event writes, void fillers,
 * durable_seq), event-reads.ts, log-epochs.ts (the rewind after a restore; the epoch is read
 * with durable_seq), cql.ts (statements and helpers). How an append works:
 * 1. The store instance takes the conversation's lease unless it holds it (Leases.use): one
 *    lightweight transaction on the allocator (static columns of `conversation_cids`) that
 *    names it holder and reserves LEASE_RANGE (1000) seqs. While it holds the lease it is the
 *    conversation's only writer and hands the seqs out locally; one more LWT per 1000 seqs.
 *    Another instance that wants the conversation asks the holder (a row in `lease_requests`,
 *    which the holder polls every 10 ms); the holder lets its appends in flight finish and
 *    releases with an LWT that gives back the seqs it did not use, so nobody waits on them.
 *    An idle lease is released after 2 s, all of them on close().
 * 2. Cids: a plain read of `cid_claims` (one tiny partition per claim; the lookups of all
 *    appends that start together go out as one `claim IN ?`), and for a cid in flight in
 *    another append of this instance, that append's outcome. No Paxos round: only the holder
 *    writes claims, and it registers an append's cids before the next append of the
 *    conversation looks its own up.
 * 3. The events, their claims and sender index, of every conversation of an appendMany call,
 *    are written as unlogged batches of under 4 KiB (larger multi-partition batches make
 *    Cassandra warn on each), retried per conversation, and voided if they keep failing.
 * 4. Once the appends before it in the lease are published, each conversation's durable_seq is
 *    raised to its last seq (one shared batch for the call) and the append resolves. Readers
 *    and lastSeqs never look past durable_seq, so nobody sees a hole or waits on a seq that is
 *    not written yet, and appends publish in seq order.
 * So an append costs no Paxos round (one per lease taken or handed over, or per 1000 seqs), a
 * share of one read and of the write batches, and one durable_seq row per conversation.
 * Crash of a holder: each instance renews `store_instances.alive_until` (now + takeoverMs)
 * every takeoverMs / 4 and starts no write once its last renewal is takeoverMs / 2 old. A lease
 * whose holder is past alive_until is taken over: the taker voids the unwritten seqs below the
 * highest one the dead holder wrote, adopts the claims of what it wrote, reuses the rest of
 * its range, and publishes under a higher lease epoch (durable_seq's write timestamp), which a
 * late durable_seq write of the dead holder cannot beat; its events and voids carry later
 * write timestamps than the dead holder's. Appends to that conversation wait up to takeoverMs.
 * An append that wrote events but could not publish them drops the lease (the take-over then
 * publishes them), so a retry of their cids finds them instead of storing them twice.
 * Figures (bench of 2026-12-02 16:03, one local node on a shared 2-core box, same run for both
 * stores): store-load 5,940 appends/s (PostgreSQL 16,551; the per-append LWT store did 1,363,
 * and 1,357–1,492 against 5,400–7,800 for this one in alternating runs on one node); end to
 * end (persist) 3,306 acked/s (PostgreSQL 2,960). The node is CPU-bound: ~240 µs of Cassandra
 * CPU per append (about 3.5 row mutations per message and a share of the claim read).
 * Remaining risks: hub clocks that disagree by more than takeoverMs / 2, or a process paused
 * for longer than that between its liveness check and its write landing, can let a dead-taken
 * holder's late write overwrite a seq its taker reused. Two instances writing one conversation
 * by turns hand the lease over each time (about 2 LWTs and a poll interval, ~25 ms here), so
 * such a conversation is slower than with the old per-append LWT. Upgrading past migration 003:
 * stop the replicas of the older version first (they allocate by per-append CAS and would not
 * respect leases); seqs they allocated and left unwritten are voided after takeoverMs, and
 * their claims (conversation_cids rows, event_cids) are still honoured.
 */
export class CassandraMessageStore implements MessageStore {
  private readonly cql: Cql;
  private readonly logger: Logger;
  private readonly takeoverMs: number;
  private readonly leases: Leases;
  private readonly log: EventLog;
  private readonly claims: CidClaims;
  private readonly reads: EventReads;
  private readonly appender: Appender;

  constructor(private readonly opts: CassandraMessageStoreOptions) {
    if (!/^[a-z][a-z0-9_]{0,47}$/.test(opts.keyspace)) throw new Error(`invalid Cassandra keyspace name: ${opts.keyspace}`);
    this.logger = opts.logger;
    this.takeoverMs = opts.takeoverMs ?? 15_000;
    this.cql = new Cql(
      new cassandra.Client({
        contactPoints: opts.contactPoints,
        localDataCenter: opts.localDataCenter,
        keyspace: opts.keyspace,
        // SERIAL, not LOCAL_SERIAL: leases must be linearizable across data centers.
        queryOptions: { consistency: consistencies.localQuorum, serialConsistency: consistencies.serial, prepare: true },
      }),
    );
    this.log = new EventLog(this.cql, this.logger, this.takeoverMs);
    this.leases = new Leases(this.cql, this.log, this.logger, {
      takeoverMs: this.takeoverMs,
      handoverWaitMs: opts.handoverWaitMs ?? 5_000,
      idleMs: opts.leaseIdleMs ?? 2_000,
      pollMs: opts.handoverPollMs ?? 10,
    });
    this.claims = new CidClaims(this.cql, this.logger);
    this.leases.onNewConversation = (conv) => this.claims.markNew(conv);
    this.appender = new Appender(this.leases, this.log, this.claims, this.logger, (events, ts) => this.writeEvents(events, ts));
    this.reads = new EventReads(this.cql);
  }

  /** Creates the keyspace, then applies each db/cassandra/*.cql file once, in name order. */
  async init() {
    await migrate(this.cql, this.opts);
    await this.claims.init();
    await this.leases.start();
  }

  async close() {
    await this.leases.stop();
    await this.cql.client.shutdown();
  }

  // ---- append ---------------------------------------------------------------------------

  async append(conv: string, drafts: EventDraft[]): Promise<AppendResult[]> {
    if (drafts.length === 0) return [];
    const [out] = await this.appender.appendMany([{ conv, drafts }]);
    if (out!.status === 'rejected') throw out!.reason;
    return out!.value;
  }

  appendMany(batches: AppendBatch[]): Promise<PromiseSettledResult<AppendResult[]>[]> {
    return this.appender.appendMany(batches);
  }

  /** A method of its own so that tests can make the writes fail. */
  private writeEvents(events: StoredEvent[], ts: number) {
    return this.log.writeEvents(events, ts);
  }

  // ---- reads ----------------------------------------------------------------------------

  read(conv: string, range: ReadRange): Promise<StoredEvent[]> {
    return this.reads.read(conv, range);
  }

  lastSeqs(convs: string[]): Promise<Map<string, number>> {
    return this.reads.lastSeqs(convs);
  }

  /** From the head rows: durable_seq with the epoch and restored_seq kept beside it (migration 004). */
  async heads(convs: string[]): Promise<Map<string, LogHead>> {
    const unique = [...new Set(convs)];
    const rows = await mapLimit(unique, 64, (c) => this.cql.head(c));
    return new Map(
      unique.map((c, i) => {
        const h = rows[i]!;
        const head: LogHead = { seq: h.durable, epoch: h.epoch };
        if (h.restoredSeq != null) head.restoredSeq = h.restoredSeq;
        return [c, head];
      }),
    );
  }

  rewind(convs: string[], now = Date.now()): Promise<RewindOutcome> {
    return rewindEpochs(this.cql, convs, now);
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
