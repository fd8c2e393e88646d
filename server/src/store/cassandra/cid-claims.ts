import type { Logger } from '../../observability/logger.ts';
import type { EventDraft, StoredEvent } from '../message-store.ts';
import { claimId, claimLookup, type Cql, mapLimit, num, Q, remember, str } from './cql.ts';

/** Keys per `claim IN ?` read. */
const KEYS_PER_READ = 200;
/** (sender, cid) pairs per read of conversation_cids (claims from before migration 003). */
const OLD_PER_READ = 100;

export const claimKey = (from: unknown, cid: unknown) => `${String(from).toLowerCase()}\u0000${String(cid)}`;

interface Ask {
  conv: string;
  drafts: EventDraft[];
  published: number;
  resolve: (m: Map<EventDraft, StoredEvent>) => void;
  reject: (e: unknown) => void;
}

/**
 * Idempotency claims: `cid_claims` maps (conversation, sender, cid) to the event that carries
 * the cid and its seq. Claims are written with their events, in the same unlogged batch, by the
 * conversation's lease holder, which is its only writer: so a plain read before the write is
 * enough to find a cid stored before (no lightweight transaction). The reads of the appends
 * that start together go out as one `claim IN ?` statement (one tiny partition per claim, so
 * bloom filters answer for new cids). A claim counts only when the event at its seq carries its
 * event id and that seq is published: a claim whose append failed (its seq voided), or a late
 * write of a dead lease holder at a seq that its taker reuses, is not one.
 * Claims written before migration 003 (rows of conversation_cids) and before 002 (event_cids)
 * are looked up too, for the conversations that have any.
 */
export class CidClaims {
  /** Whether the pre-002 table `event_cids` holds any claim (then it is consulted too). */
  private legacy = false;
  /** Per conversation: whether conversation_cids holds claim rows (written before migration 003). */
  private readonly oldRows = new Map<string, number>();
  private queue: Ask[] = [];

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
  lookup(conv: string, drafts: EventDraft[], published: number): Promise<Map<EventDraft, StoredEvent>> {
    if (!drafts.length) return Promise.resolve(new Map());
    return new Promise((resolve, reject) => {
      if (!this.queue.length) setImmediate(() => void this.flush());
      this.queue.push({ conv, drafts, published, resolve, reject });
    });
  }

  private async flush() {
    const asks = this.queue;
    this.queue = [];
    const byId = new Map<string, { ask: Ask; d: EventDraft }>();
    for (const ask of asks) for (const d of ask.drafts) byId.set(claimId(ask.conv, d.from, d.cid), { ask, d });
    const ids = [...byId.keys()];
    const chunks: string[][] = [];
    for (let i = 0; i < ids.length; i += KEYS_PER_READ) chunks.push(ids.slice(i, i + KEYS_PER_READ));
    let rows: { ask: Ask; d: EventDraft; eventId: string | null; seq: number | null }[];
    try {
      rows = (await mapLimit(chunks, 4, async (chunk) => (await this.cql.q(Q.claimKeysIn, [chunk], { isIdempotent: true })).rows))
        .flat()
        .map((r) => ({ ...byId.get(String(r.get('claim')))!, eventId: str(r.get('event_id')), seq: num(r.get('seq')) }));
    } catch (err) {
      for (const a of asks) a.reject(err);
      return;
    }
    await Promise.all(
      asks.map(async (ask) => {
        try {
          const out = new Map<EventDraft, StoredEvent>();
          const found = rows.filter((r) => r.ask === ask);
          await this.adoptOld(
            ask,
            found.map((r) => r.d),
            found,
          );
          await mapLimit(found, 16, async (r) => {
            if (r.eventId == null || r.seq == null || r.seq > ask.published) return;
            const event = await this.cql.readOne(ask.conv, r.seq);
            if (event?.id === r.eventId) out.set(r.d, event);
          });
          ask.resolve(out);
        } catch (err) {
          ask.reject(err);
        }
      }),
    );
  }

  /**
   * For conversations with claims from before migration 003 (rows of conversation_cids, or
   * event_cids before 002): the drafts not found in cid_claims are looked up there as well.
   */
  private async adoptOld(
    ask: Ask,
    foundDrafts: EventDraft[],
    found: { ask: Ask; d: EventDraft; eventId: string | null; seq: number | null }[],
  ) {
    const missing = ask.drafts.filter((d) => !foundDrafts.includes(d));
    if (!missing.length) return;
    if (this.legacy) {
      for (const d of missing) {
        const old = (await this.cql.q(Q.legacyClaimRow, [ask.conv, d.from, d.cid], { isIdempotent: true })).first();
        const holder = str(old?.get('event_id'));
        if (holder != null && str(old!.get('seq_event_id')) === holder) found.push({ ask, d, eventId: holder, seq: num(old!.get('seq')) });
      }
    }
    if (!(await this.hasOldRows(ask.conv))) return;
    const rest = missing.filter((d) => !found.some((f) => f.d === d));
    for (let i = 0; i < rest.length; i += OLD_PER_READ) {
      const chunk = rest.slice(i, i + OLD_PER_READ);
      const params: unknown[] = [ask.conv];
      for (const d of chunk) params.push(d.from, d.cid);
      for (const r of (await this.cql.q(claimLookup(chunk.length), params, { isIdempotent: true })).rows) {
        const holder = str(r.get('event_id'));
        const d = chunk.find((c) => claimKey(c.from, c.cid) === claimKey(r.get('sender_id'), r.get('cid')));
        if (d && holder != null && str(r.get('seq_event_id')) === holder) found.push({ ask, d, eventId: holder, seq: num(r.get('seq')) });
      }
    }
  }

  /** A conversation whose conversation_cids partition did not exist: it has no claims from before migration 003. */
  markNew(conv: string) {
    remember(this.oldRows, conv, 0);
  }

  private async hasOldRows(conv: string): Promise<boolean> {
    const known = this.oldRows.get(conv);
    if (known !== undefined) return known === 1;
    const row = (await this.cql.q(Q.oldClaimAny, [conv], { isIdempotent: true })).first();
    const has = row?.get('cid') != null;
    remember(this.oldRows, conv, has ? 1 : 0);
    return has;
  }
}
