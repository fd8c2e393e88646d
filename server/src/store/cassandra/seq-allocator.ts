import cassandra from 'cassandra-driver';
import type { Logger } from '../../observability/logger.ts';
import type { EventDraft } from '../message-store.ts';
import { type Cql, keyOf, nowMicros, num, Q, remember, type Row, sleep, str } from './cql.ts';
import { MessageStoreUnavailableError } from './errors.ts';

const { consistencies } = cassandra.types;

/** Most cid claims that ride in the allocating batch (batch_size_fail_threshold is 50 KiB). */
export const INLINE_CLAIMS = 100;

export interface Allocation {
  start: number;
  end: number;
  /** Write timestamp of the events (µs), fixed before the first write so retries cannot outrun a void filler. */
  ts: number;
  at: number;
}

export interface Reservation {
  /** Seqs of `fresh`, in order; null when every draft's cid is held by another append. */
  alloc: Allocation | null;
  /** Indexes (into the drafts passed) of the drafts that get seqs, in order; their cids are this append's. */
  fresh: number[];
  /** Indexes of the drafts whose cid another append holds, with its claim row. */
  heldByOthers: Map<number, Row>;
}

const rowKey = (r: Row) => `${String(r.get('sender_id')).toLowerCase()}\u0000${String(r.get('cid'))}`;
const draftKey = (d: EventDraft) => `${String(d.from).toLowerCase()}\u0000${String(d.cid)}`;

/**
 * Hands out consecutive seqs per conversation from the static `last_seq` of its
 * `conversation_cids` partition, and claims the drafts' cids in the same conditional batch:
 * one Paxos round for both. A batch whose condition fails applies nothing and returns the rows
 * that made it fail: a moved `last_seq` (another appender won; retried with jittered backoff)
 * and the claims that already exist (those drafts leave the batch, which is retried at once).
 */
export class SeqAllocator {
  /** Last known allocated seq per conversation: the expected value of the next CAS. */
  private readonly lastSeqHint = new Map<string, number>();

  constructor(
    private readonly cql: Cql,
    private readonly logger: Logger,
  ) {}

  /**
   * Allocates seqs for `drafts` (distinct cids), claiming their cids in the same round when
   * `claim` is set (then at most INLINE_CLAIMS keyed drafts); without it, the caller has claimed
   * them already. May have claimed cids when it throws (the caller releases them).
   */
  async reserve(conv: string, drafts: EventDraft[], claim: boolean): Promise<Reservation> {
    const allocId = cassandra.types.Uuid.random().toString();
    const heldByOthers = new Map<number, Row>();
    /** Claims already ours (taken over from a stale holder in an earlier round). */
    const owned = new Set<number>();
    let expected = this.lastSeqHint.get(conv);
    const deadline = performance.now() + 30_000;
    for (let attempt = 0, contended = 0; ; attempt++) {
      if (performance.now() > deadline) throw new MessageStoreUnavailableError(`seq allocation for ${conv} kept failing`);
      if (contended > 1) await sleep(Math.random() * Math.min(100, 2 ** contended));
      expected ??= await this.seed(conv);
      const fresh = drafts.map((_, i) => i).filter((i) => !heldByOthers.has(i));
      if (!fresh.length) return { alloc: null, fresh, heldByOthers };
      const n = fresh.length;
      const base: number = expected;
      const now = new Date();
      const statements: { query: string; params: unknown[] }[] = [{ query: Q.allocCas, params: [base + n, allocId, conv, base] }];
      if (claim) {
        fresh.forEach((i, k) => {
          const d = drafts[i]!;
          if (keyOf(d) == null) return;
          statements.push(
            owned.has(i)
              ? { query: Q.claimRenew, params: [now, base + 1 + k, d.id, conv, d.from, d.cid, d.id] }
              : { query: Q.claim, params: [conv, d.from, d.cid, d.id, now, base + 1 + k, d.id] },
          );
        });
      }
      let applied: boolean;
      let rows: Row[] = [];
      try {
        const rs = statements.length === 1 ? await this.cql.q(Q.allocCas, statements[0]!.params) : await this.cql.client.batch(statements, { prepare: true });
        applied = rs.wasApplied();
        rows = rs.rows;
      } catch (err) {
        // Outcome unknown (e.g. a CAS write timeout): a SERIAL read finishes any in-flight round
        // and tells whether ours won (the claims went with it or not at all). If ours was applied
        // but overtaken since, its seqs become a hole that the hole filler voids.
        this.logger.warn({ err: (err as Error).message, conv, attempt }, 'seq CAS failed; checking its outcome');
        let row: Row | undefined;
        try {
          row = (await this.cql.q(Q.allocRow, [conv], { consistency: consistencies.serial })).first();
        } catch {
          throw new MessageStoreUnavailableError(`seq allocation for ${conv} failed`, { cause: err });
        }
        applied = str(row?.get('alloc_id')) === allocId;
        if (!applied) {
          expected = num(row?.get('last_seq')) ?? undefined;
          contended++;
          continue;
        }
      }
      if (applied) {
        const end = base + n;
        remember(this.lastSeqHint, conv, end);
        return { alloc: { start: base + 1, end, ts: nowMicros(), at: performance.now() }, fresh, heldByOthers };
      }
      // Not applied, nothing written. Every returned row carries the partition's static last_seq.
      const current = rows.length ? num(rows[0]!.get('last_seq')) : null;
      const byKey = new Map<string, Row>();
      for (const r of rows) if (r.get('cid') != null) byKey.set(rowKey(r), r);
      let conflicts = 0;
      for (const i of claim ? fresh : []) {
        const d = drafts[i]!;
        const r = keyOf(d) != null ? byKey.get(draftKey(d)) : undefined;
        if (!r) continue;
        if (String(r.get('event_id')) !== d.id) {
          owned.delete(i);
          heldByOthers.set(i, r);
          conflicts++;
        } else if (!owned.has(i)) {
          // Our own id: an earlier round took the claim over for this draft.
          owned.add(i);
          conflicts++;
        }
      }
      if (current != null && current !== base) {
        expected = current;
        contended++;
      } else if (!conflicts) {
        // No reason came back (not expected; or a claim of ours vanished): re-read the
        // allocator and claim the owned drafts afresh.
        owned.clear();
        expected = undefined;
        contended++;
      }
    }
  }

  /**
   * The allocator's last_seq for a conversation without a hint: a plain read (a stale value only
   * costs a failed CAS, which returns the current one); for a conversation never appended to
   * since migration 002, seeded from conversation_heads.last_seq by one CAS.
   */
  private async seed(conv: string): Promise<number> {
    const row = (await this.cql.q(Q.allocRow, [conv], { isIdempotent: true })).first();
    const known = num(row?.get('last_seq'));
    if (known != null) return known;
    // Nothing writes conversation_heads.last_seq any more (older replicas must be stopped first).
    const legacy = num((await this.cql.q(Q.legacyHead, [conv], { isIdempotent: true })).first()?.get('last_seq')) ?? 0;
    const rs = await this.cql.q(Q.allocSeed, [legacy, conv]);
    return rs.wasApplied() ? legacy : num(rs.first()?.get('last_seq'))!;
  }
}
