import cassandra from 'cassandra-driver';
import type { Logger } from '../../observability/logger.ts';
import type { EventDraft, StoredEvent } from '../message-store.ts';
import { type Cql, num, Q, type Row, sleep, str } from './cql.ts';
import { MessageStoreUnavailableError } from './errors.ts';
import type { EventLog } from './event-log.ts';
import { INLINE_CLAIMS } from './seq-allocator.ts';

/** Claims per conditional batch: well below batch_size_fail_threshold (50 KiB) at ~100 bytes each. */
const CLAIM_CHUNK = INLINE_CLAIMS;

const claimKey = (from: unknown, cid: unknown) => `${String(from).toLowerCase()}\u0000${String(cid)}`;

/**
 * Idempotency claims: a (conversation, sender, cid) belongs to the append that claimed it with
 * INSERT ... IF NOT EXISTS in `conversation_cids`, whose partition is the conversation. An append
 * of up to INLINE_CLAIMS keyed drafts claims them in the conditional batch that allocates its
 * seqs (SeqAllocator.reserve); a bigger one claims them here first, with one conditional batch
 * per CLAIM_CHUNK drafts. Such a batch applies all or nothing, so when some cid is already
 * claimed it is retried without the claimed ones (the failed batch returns the existing rows).
 */
export class CidClaims {
  /** Whether the pre-002 table `event_cids` holds any claim (then it is consulted too). */
  private legacy = false;

  constructor(
    private readonly cql: Cql,
    private readonly log: EventLog,
    private readonly logger: Logger,
    private readonly claimStaleMs: number,
  ) {}

  /** Called once the schema is migrated. */
  async init() {
    this.legacy = (await this.cql.q(Q.legacyAny, [], { isIdempotent: true })).rowLength > 0;
    if (this.legacy) this.logger.info('event_cids holds claims from before migration 002; cids are looked up there too');
  }

  /**
   * Claims (conv, from, cid) for each draft (all keyed, distinct keys): per draft undefined when
   * the claim is ours, else the claim row that holds it. When it throws, claims it may have
   * taken are released.
   */
  async claimAll(conv: string, drafts: EventDraft[]): Promise<(Row | undefined)[]> {
    const out = new Map<EventDraft, Row | undefined>();
    try {
      for (let at = 0; at < drafts.length; at += CLAIM_CHUNK) await this.claimChunk(conv, drafts.slice(at, at + CLAIM_CHUNK), out);
    } catch (err) {
      await this.release(conv, drafts);
      throw err;
    }
    return drafts.map((d) => out.get(d));
  }

  private async claimChunk(conv: string, chunk: EventDraft[], out: Map<EventDraft, Row | undefined>) {
    let todo = chunk;
    for (let round = 0; todo.length; round++) {
      if (round > 2 * CLAIM_CHUNK) throw new MessageStoreUnavailableError(`cid claims in ${conv} kept conflicting`);
      const now = new Date();
      const rs =
        todo.length === 1
          ? await this.cql.q(Q.claim, [conv, todo[0]!.from, todo[0]!.cid, todo[0]!.id, now, null, null])
          : await this.cql.client.batch(
              todo.map((d) => ({ query: Q.claim, params: [conv, d.from, d.cid, d.id, now, null, null] })),
              { prepare: true },
            );
      if (rs.wasApplied()) {
        for (const d of todo) out.set(d, undefined);
        return;
      }
      // Not applied: nothing of this batch was written. The rows that made it fail come back.
      const existing = new Map<string, Row>();
      for (const r of rs.rows) if (r.get('cid') != null) existing.set(claimKey(r.get('sender_id'), r.get('cid')), r);
      if (!existing.size) {
        // Not expected (Cassandra returns the existing rows); look them up to make progress.
        for (const d of todo) {
          const r = (await this.cql.q(Q.claimRow, [conv, d.from, d.cid], { consistency: cassandra.types.consistencies.serial })).first();
          if (r) existing.set(claimKey(d.from, d.cid), r);
        }
      }
      const rest: EventDraft[] = [];
      for (const d of todo) {
        const r = existing.get(claimKey(d.from, d.cid));
        if (!r) rest.push(d);
        // Our own id: an earlier round took the claim over for this draft.
        else out.set(d, String(r.get('event_id')) === d.id ? undefined : r);
      }
      todo = rest;
    }
  }

  /**
   * A cid not claimed here may have been stored before migration 002, in event_cids: then a
   * claim here is created for that event (unless one exists already), so that claiming the cid
   * finds it held and the draft becomes a duplicate of it. Only while event_cids holds rows.
   * Remaining risk: an append of an older version still running (or crashed mid-append) during
   * the upgrade holds an unfinished claim there that this does not see, so stop old replicas
   * before new ones start.
   */
  async adoptLegacy(conv: string, drafts: EventDraft[]) {
    if (!this.legacy) return;
    await Promise.all(
      drafts.map(async (d) => {
        const old = (await this.cql.q(Q.legacyClaimRow, [conv, d.from, d.cid], { isIdempotent: true })).first();
        const holder = str(old?.get('event_id'));
        const seq = holder != null && str(old!.get('seq_event_id')) === holder ? num(old!.get('seq')) : null;
        if (seq == null || (await this.cql.readOne(conv, seq))?.id !== holder) return;
        await this.cql.q(Q.claim, [conv, d.from, d.cid, holder, old!.get('claimed_at') ?? new Date(), seq, holder]);
      }),
    );
  }

  /**
   * Waits until the append holding a draft's cid has written its event, and returns that event.
   * Returns null when the claim was released, or was stale and is now ours: the draft is then
   * appended in another round.
   */
  async awaitClaim(conv: string, d: EventDraft, first: Row, patience: number): Promise<StoredEvent | null> {
    const key = [conv, d.from, d.cid];
    const waitStart = performance.now();
    let row: Row | undefined = first;
    for (let delay = 2; row; delay = Math.min(delay * 2, 100)) {
      // A null holder: a released claim whose seq cells outlived the delete (clock skew).
      const holder = str(row.get('event_id'));
      if (holder === d.id) return null;
      const seq = holder != null && str(row.get('seq_event_id')) === holder ? num(row.get('seq')) : null;
      const event = seq != null ? await this.cql.readOne(conv, seq) : null;
      if (event?.id === holder) return event;
      const voided = event != null; // the holder's seq holds a void filler: its append failed
      const claimedAt = (row.get('claimed_at') as Date | null)?.getTime() ?? 0;
      if (holder == null || voided || Date.now() - claimedAt > this.claimStaleMs) {
        // The holder died or gave up. Void its seq first when known, so that a late write of
        // the holder's loses against it (later timestamp) instead of duplicating the message.
        if (seq != null && !voided) await this.log.writeVoids(conv, [seq]);
        if ((await this.cql.q(Q.claimSteal, [d.id, new Date(), ...key, holder])).wasApplied()) {
          this.logger.warn({ conv, cid: d.cid }, 'took over a stale cid claim');
          return null;
        }
      } else if (performance.now() - waitStart > patience) {
        throw new MessageStoreUnavailableError(`cid ${d.cid} in ${conv} is held by an append still in progress; retry`);
      } else {
        await sleep(delay);
      }
      row = (await this.cql.q(Q.claimRow, key)).first();
    }
    return null;
  }

  async release(conv: string, held: EventDraft[]) {
    await Promise.all(
      held.map((d) =>
        this.cql.q(Q.claimRelease, [conv, d.from, d.cid, d.id]).catch((err) =>
          this.logger.warn({ err: (err as Error).message, conv, cid: d.cid }, 'could not release a cid claim'),
        ),
      ),
    );
  }
}
