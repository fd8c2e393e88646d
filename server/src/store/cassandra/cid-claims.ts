import type { Logger } from '../../observability/logger.ts';
import type { EventDraft, StoredEvent } from '../message-store.ts';
import { claimLookup, type Cql, mapLimit, num, Q, str } from './cql.ts';

/** Claims per lookup statement. */
const LOOKUP_CHUNK = 100;

export const claimKey = (from: unknown, cid: unknown) => `${String(from).toLowerCase()}\u0000${String(cid)}`;

/**
 * Idempotency claims: the rows of `conversation_cids` (conversation, sender, cid) → the event
 * that carries the cid and its seq. They are written with the events, in the same unlogged
 * batch, by the conversation's lease holder, which is its only writer: so a plain read before
 * the write is enough to find a cid stored before (no lightweight transaction). A row counts
 * only when the event at its seq carries its event id and that seq is published: a row whose
 * append failed (its seq voided), or a late write of a dead lease holder at a seq that its
 * taker reuses, is not a claim.
 */
export class CidClaims {
  /** Whether the pre-002 table `event_cids` holds any claim (then it is consulted too). */
  private legacy = false;

  constructor(
    private readonly cql: Cql,
    private readonly logger: Logger,
  ) {}

  /** Called once the schema is migrated. */
  async init() {
    this.legacy = (await this.cql.q(Q.legacyAny, [], { isIdempotent: true })).rowLength > 0;
    if (this.legacy) this.logger.info('event_cids holds claims from before migration 002; cids are looked up there too');
  }

  /** The stored event of each draft (keyed, distinct keys) whose cid is claimed at or below `published`. */
  async lookup(conv: string, drafts: EventDraft[], published: number): Promise<Map<EventDraft, StoredEvent>> {
    const out = new Map<EventDraft, StoredEvent>();
    if (!drafts.length) return out;
    await this.adoptLegacy(conv, drafts);
    const byKey = new Map(drafts.map((d) => [claimKey(d.from, d.cid), d]));
    const chunks: EventDraft[][] = [];
    for (let i = 0; i < drafts.length; i += LOOKUP_CHUNK) chunks.push(drafts.slice(i, i + LOOKUP_CHUNK));
    const rows = (
      await mapLimit(chunks, 4, async (chunk) => {
        const params: unknown[] = [conv];
        for (const d of chunk) params.push(d.from, d.cid);
        return (await this.cql.q(claimLookup(chunk.length), params, { isIdempotent: true })).rows;
      })
    ).flat();
    await mapLimit(rows, 16, async (r) => {
      const holder = str(r.get('event_id'));
      const seq = num(r.get('seq'));
      if (holder == null || seq == null || seq > published || str(r.get('seq_event_id')) !== holder) return;
      const event = await this.cql.readOne(conv, seq);
      const d = byKey.get(claimKey(r.get('sender_id'), r.get('cid')));
      if (d && event?.id === holder) out.set(d, event);
    });
    return out;
  }

  /**
   * A cid not claimed here may have been stored before migration 002, in event_cids: then a
   * claim here is created for that event (unless one exists already). Only while event_cids
   * holds rows. Remaining risk: an append of an older version still running during the
   * upgrade holds an unfinished claim there that this does not see, so stop old replicas first.
   */
  private async adoptLegacy(conv: string, drafts: EventDraft[]) {
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
}
