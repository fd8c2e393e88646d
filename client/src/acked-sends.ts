import type { Ack } from './socket-types.ts';

/**
 * The client's recent acked sends with the log epoch each was acked in: after a restore from
 * backup rewinds a conversation, the ones above the recovery point are what the restore lost,
 * and the client that sent them is the one that can say so. Bounded: the oldest are forgotten
 * first (a restore loses recent messages, not old ones).
 */
export class AckedSends {
  private readonly byCid = new Map<string, { ack: Ack; epoch: number }>();

  constructor(private readonly max = 10_000) {}

  remember(ack: Ack, epoch: number) {
    this.byCid.delete(ack.cid);
    this.byCid.set(ack.cid, { ack, epoch });
    if (this.byCid.size > this.max) this.byCid.delete(this.byCid.keys().next().value!);
  }

  /**
   * The log of `conv` is now in `epoch`, rewound to `restoredSeq`: the sends acked in an earlier
   * epoch above it are lost (forgotten here once reported). Without `restoredSeq` none is
   * reported: nothing says which survived.
   */
  lost(conv: string, epoch: number, restoredSeq: number | undefined): Ack[] {
    const out: Ack[] = [];
    if (restoredSeq === undefined) return out;
    for (const [cid, a] of this.byCid) {
      if (a.ack.conv !== conv || a.epoch === epoch) continue;
      if (a.ack.seq > restoredSeq) out.push(a.ack);
      this.byCid.delete(cid);
    }
    return out.sort((x, y) => x.seq - y.seq);
  }

  forget(conv: string) {
    for (const [cid, a] of this.byCid) if (a.ack.conv === conv) this.byCid.delete(cid);
  }
}
