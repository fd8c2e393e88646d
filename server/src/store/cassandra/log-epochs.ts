import type { RewindOutcome } from '../message-store.ts';
import { bucketOf, type Cql, mapLimit, num, nowMicros, Q } from './cql.ts';

/** How many seqs below each restored head the rewind checks are all in the log. */
const CHECKED_TAIL = 100;

/**
 * The Cassandra side of `restore:epochs` (MessageStore.rewind): every row of conversation_heads,
 * and each conversation named that has none, gets epoch = max(old + 1, the restore's Unix
 * seconds) and restored_seq = its durable_seq, the head the restored snapshot left. A read and a
 * plain write per conversation, no lightweight transaction: it runs once per restore with no hub
 * serving the log, so nothing else writes an epoch meanwhile. The table is walked page by page,
 * so a keyspace of many conversations is never held in memory at once.
 *
 * `nodetool snapshot` links one table after another, so a snapshot taken while hubs wrote can
 * hold a head a moment ahead of its events. Appends publish in seq order shortly after writing,
 * so the events such a snapshot lacks are the newest below the head: the last CHECKED_TAIL seqs
 * of each are read, and conversations missing any are reported as `incomplete`.
 */
export async function rewindEpochs(cql: Cql, convs: string[], now: number): Promise<RewindOutcome> {
  const epoch = Math.floor(now / 1000);
  const named = new Set(convs.map((c) => c.toLowerCase()));
  let count = 0;
  const incomplete: string[] = [];
  const bump = (rows: { conv: string; durable: number; old: number }[]) =>
    mapLimit(rows, 32, async ({ conv, durable, old }) => {
      if ((await missingBelow(cql, conv, durable)) > 0) incomplete.push(conv);
      await cql.q(Q.setEpoch, [nowMicros(), Math.max(old + 1, epoch), durable, conv], { isIdempotent: true });
    }).then(() => {
      count += rows.length;
    });
  let pageState: string | undefined;
  do {
    const rs = await cql.client.execute(Q.allHeads, [], { prepare: true, fetchSize: 2000, pageState, isIdempotent: true });
    const rows = rs.rows.map((r) => {
      const conv = String(r.get('conversation_id'));
      named.delete(conv);
      return { conv, durable: num(r.get('durable_seq')) ?? 0, old: num(r.get('epoch')) ?? 1 };
    });
    await bump(rows);
    pageState = rs.pageState ?? undefined;
  } while (pageState);
  // Conversations with nothing in the restored log: their events after the point were seen.
  await bump([...named].map((conv) => ({ conv, durable: 0, old: 1 })));
  return incomplete.length ? { conversations: count, epoch, incomplete } : { conversations: count, epoch };
}

/** How many of the last CHECKED_TAIL seqs up to `head` have no event. */
async function missingBelow(cql: Cql, conv: string, head: number): Promise<number> {
  if (head <= 0) return 0;
  const lo = Math.max(1, head - CHECKED_TAIL + 1);
  let found = 0;
  for (let b = bucketOf(lo); b <= bucketOf(head); b++) {
    found += (await cql.q(Q.seqRange, [conv, b, lo, head], { isIdempotent: true })).rowLength;
  }
  return head - lo + 1 - found;
}
