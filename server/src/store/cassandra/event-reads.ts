import { carriesText, type EventKind, type ReadRange, redactedData, type StoredEvent } from '../message-store.ts';
import { BUCKET_SIZE, bucketOf, byBucket, type Cql, mapLimit, num, Q, toEvent } from './cql.ts';

/** The read side of the event log. Nothing past a conversation's durable_seq is ever returned. */
export class EventReads {
  constructor(private readonly cql: Cql) {}

  async read(conv: string, range: ReadRange): Promise<StoredEvent[]> {
    const limit = Math.floor(range.limit);
    if (!(limit > 0)) return [];
    const { durable } = await this.cql.head(conv);
    let lo = Math.max(1, Math.floor(range.afterSeq ?? 0) + 1);
    let hi = Math.min(durable, Math.ceil(range.beforeSeq ?? Infinity) - 1);
    if (lo > hi) return [];
    // Every seq up to durable_seq exists, so the bounds can be computed before reading.
    if (range.afterSeq == null && range.beforeSeq != null) lo = Math.max(lo, hi - limit + 1);
    else hi = Math.min(hi, lo + limit - 1);
    const buckets: number[] = [];
    for (let b = bucketOf(lo); b <= bucketOf(hi); b++) buckets.push(b);
    const parts = await mapLimit(buckets, 4, (b) =>
      this.cql.all(Q.eventRange, [conv, b, Math.max(lo, b * BUCKET_SIZE), Math.min(hi, b * BUCKET_SIZE + BUCKET_SIZE - 1)]),
    );
    return parts.flat().map(toEvent);
  }

  async lastSeqs(convs: string[]): Promise<Map<string, number>> {
    const unique = [...new Set(convs)];
    const heads = await mapLimit(unique, 64, (c) => this.cql.head(c));
    return new Map(unique.map((c, i) => [c, heads[i]!.durable]));
  }

  async lastMessages(convs: string[]): Promise<Map<string, StoredEvent>> {
    const unique = [...new Set(convs)];
    const found = await mapLimit(unique, 64, async (c) => {
      const { durable, lastMessage } = await this.cql.head(c);
      if (lastMessage == null) return null;
      const e = await this.cql.readOne(c, lastMessage);
      return e?.kind === 'message' ? e : this.scanBackForMessage(c, Math.min(lastMessage, durable));
    });
    const out = new Map<string, StoredEvent>();
    unique.forEach((c, i) => found[i] && out.set(c, found[i]!));
    return out;
  }

  /** Fallback when last_message_seq does not point at a message (not expected; kept for safety). */
  private async scanBackForMessage(conv: string, from: number): Promise<StoredEvent | null> {
    for (let b = bucketOf(from); b >= 0; b--) {
      const rows = await this.cql.all(Q.eventRangeDesc, [conv, b, from]);
      const hit = rows.find((r) => r.get('kind') === 'message');
      if (hit) return toEvent(hit);
    }
    return null;
  }

  async redact(conv: string, seqs: number[]) {
    await mapLimit([...byBucket(new Set(seqs))], 4, async ([b, ss]) => {
      const rows = await this.cql.all(Q.eventsIn, [conv, b, ss]);
      // Only rows that exist: an UPDATE of a missing seq would create a ghost row.
      await mapLimit(rows, 32, (r) => {
        const data = redactedData(r.get('kind') as EventKind, JSON.parse(r.get('data') as string) as Record<string, unknown>);
        return this.cql.q(Q.setData, [JSON.stringify(data), conv, b, r.get('seq')], { isIdempotent: true });
      });
    });
  }

  async seqsBySender(conv: string, from: string): Promise<number[]> {
    const candidates = (await this.cql.all(Q.senderSeqs, [conv, from])).map((r) => num(r.get('seq'))!);
    const { durable } = await this.cql.head(conv);
    // The index may name seqs of failed (voided) appends: keep those whose event says so.
    const parts = await mapLimit([...byBucket(candidates.filter((s) => s <= durable))], 4, ([b, ss]) =>
      this.cql.all(Q.eventsIn, [conv, b, ss]),
    );
    return parts
      .flat()
      .map(toEvent)
      .filter((e) => carriesText(e) && e.from === from.toLowerCase())
      .map((e) => e.seq);
  }
}
