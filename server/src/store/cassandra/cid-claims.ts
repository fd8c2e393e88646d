import type { Logger } from '../../observability/logger.ts';
import type { EventDraft, StoredEvent } from '../message-store.ts';
import { type Cql, num, Q, type Row, sleep, str } from './cql.ts';
import { MessageStoreUnavailableError } from './errors.ts';
import type { EventLog } from './event-log.ts';

/**
 * Idempotency claims: a (conversation, sender, cid) belongs to the append that claimed it with
 * INSERT ... IF NOT EXISTS in `event_cids`; once its seq is allocated the claim row records it
 * (written with the events, see EventLog.writeEvents).
 */
export class CidClaims {
  constructor(
    private readonly cql: Cql,
    private readonly log: EventLog,
    private readonly logger: Logger,
    private readonly claimStaleMs: number,
  ) {}

  /** Claims (conv, from, cid) for this draft: undefined when it is ours, else the claim row that holds it. */
  async tryClaim(conv: string, d: EventDraft): Promise<Row | undefined> {
    const rs = await this.cql.q(Q.claim, [conv, d.from, d.cid, d.id, new Date()]);
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
