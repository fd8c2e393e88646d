import { and, asc, desc, eq, gt, inArray, lt, sql } from 'drizzle-orm';
import type { Db } from '../db/database.ts';
import { logEvents, logHeads } from '../../../db/schema/index.ts';
import type { AppendResult, EventDraft, MessageStore, ReadRange, StoredEvent } from './message-store.ts';

type Row = typeof logEvents.$inferSelect;

const toEvent = (r: Row): StoredEvent => {
  const e: StoredEvent = {
    conv: r.conversationId,
    seq: Number(r.seq),
    id: r.id,
    kind: r.kind as StoredEvent['kind'],
    from: r.senderId,
    ts: r.ts.getTime(),
    data: r.data,
  };
  if (r.cid != null) e.cid = r.cid;
  return e;
};

/**
 * The message store on PostgreSQL (or PGlite). Seqs come from a per-conversation head row
 * bumped in the same transaction as the insert, so a seq exists only if its event does:
 * no holes, no reuse, whatever happens to Redis or a hub.
 */
export class PostgresMessageStore implements MessageStore {
  constructor(private readonly db: Db) {}

  async init() {
    // Tables come with the drizzle migrations, applied at start.
  }

  async append(conv: string, drafts: EventDraft[]): Promise<AppendResult[]> {
    if (drafts.length === 0) return [];
    return this.db.transaction(async (tx) => {
      // Row lock on the head serialises appends to one conversation; others proceed in parallel.
      await tx.insert(logHeads).values({ conversationId: conv, lastSeq: 0 }).onConflictDoNothing();
      const [head] = await tx
        .select({ lastSeq: logHeads.lastSeq })
        .from(logHeads)
        .where(eq(logHeads.conversationId, conv))
        .for('update');
      let seq = Number(head!.lastSeq);

      // Idempotency: look up every cid in the batch first; seen ones return their original.
      const keyed = drafts.filter((d) => d.cid != null && d.from != null);
      const existing = new Map<string, StoredEvent>();
      if (keyed.length) {
        const rows = await tx
          .select()
          .from(logEvents)
          .where(
            and(
              eq(logEvents.conversationId, conv),
              inArray(logEvents.cid, keyed.map((d) => d.cid!)),
            ),
          );
        for (const r of rows) existing.set(`${r.senderId}\u0000${r.cid}`, toEvent(r));
      }

      const results: AppendResult[] = [];
      const rows: (typeof logEvents.$inferInsert)[] = [];
      for (const d of drafts) {
        const key = d.cid != null && d.from != null ? `${d.from}\u0000${d.cid}` : null;
        const prior = key ? existing.get(key) : undefined;
        if (prior) {
          results.push({ event: prior, duplicate: true });
          continue;
        }
        const event: StoredEvent = { ...d, conv, seq: ++seq };
        if (key) existing.set(key, event); // the same cid twice in one batch stores once
        rows.push({
          conversationId: conv,
          seq: event.seq,
          id: d.id,
          kind: d.kind,
          senderId: d.from,
          cid: d.cid ?? null,
          ts: new Date(d.ts),
          data: d.data,
        });
        results.push({ event, duplicate: false });
      }
      if (rows.length) {
        await tx.insert(logEvents).values(rows);
        await tx.update(logHeads).set({ lastSeq: seq }).where(eq(logHeads.conversationId, conv));
      }
      return results;
    });
  }

  async read(conv: string, range: ReadRange): Promise<StoredEvent[]> {
    const conds = [eq(logEvents.conversationId, conv)];
    if (range.afterSeq != null) conds.push(gt(logEvents.seq, range.afterSeq));
    if (range.beforeSeq != null) conds.push(lt(logEvents.seq, range.beforeSeq));
    const newestFirst = range.afterSeq == null && range.beforeSeq != null;
    const rows = await this.db
      .select()
      .from(logEvents)
      .where(and(...conds))
      .orderBy(newestFirst ? desc(logEvents.seq) : asc(logEvents.seq))
      .limit(range.limit);
    const events = rows.map(toEvent);
    return newestFirst ? events.reverse() : events;
  }

  async lastSeqs(convs: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>(convs.map((c) => [c, 0]));
    if (!convs.length) return out;
    const rows = await this.db
      .select()
      .from(logHeads)
      .where(inArray(logHeads.conversationId, convs));
    for (const r of rows) out.set(r.conversationId, Number(r.lastSeq));
    return out;
  }

  async lastMessages(convs: string[]): Promise<Map<string, StoredEvent>> {
    const out = new Map<string, StoredEvent>();
    if (!convs.length) return out;
    const rows = await this.db
      .selectDistinctOn([logEvents.conversationId])
      .from(logEvents)
      .where(and(inArray(logEvents.conversationId, convs), eq(logEvents.kind, 'message')))
      .orderBy(logEvents.conversationId, desc(logEvents.seq));
    for (const r of rows) out.set(r.conversationId, toEvent(r));
    return out;
  }

  async redact(conv: string, seqs: number[]) {
    if (!seqs.length) return;
    await this.db
      .update(logEvents)
      .set({ data: sql`(${logEvents.data} - 'body') || '{"body":null,"redacted":true}'::jsonb` })
      .where(and(eq(logEvents.conversationId, conv), inArray(logEvents.seq, seqs)));
  }

  async seqsBySender(conv: string, from: string): Promise<number[]> {
    const rows = await this.db
      .select({ seq: logEvents.seq })
      .from(logEvents)
      .where(and(eq(logEvents.conversationId, conv), eq(logEvents.senderId, from), eq(logEvents.kind, 'message')));
    return rows.map((r) => Number(r.seq));
  }

  async close() {}
}
