import {
  AppendRefused,
  appendBatches,
  type AppendBatch,
  type AppendResult,
  type EventDraft,
  type MessageStore,
  type StoredEvent,
} from '../store/message-store.ts';

interface Pending {
  draft: EventDraft;
  acceptedAt: number;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

export interface EventWriterOptions {
  /** Most drafts in one store write (across conversations). */
  maxBatch?: number;
  /** Store writes in flight at once; what arrives meanwhile waits and is group-committed. */
  maxInFlight?: number;
  /** Told the number of drafts of each store write (the group commit's size). */
  onWrite?: (drafts: number) => void;
}

/**
 * Appends events to the message store with group commit across conversations: whatever queued
 * up while earlier writes were in flight goes out as one `appendMany` (one statement on
 * PostgreSQL), up to `maxInFlight` writes at once. No timer: an event that finds room is
 * written at once. A conversation is in at most one write at a time, so its events keep the
 * order they were accepted in. Calls `onAppended` for each new event once it is durable, in seq
 * order per conversation, before resolving its caller. Drafts the store refuses for their data
 * are tried again one by one, so a bad draft fails alone.
 */
export class EventWriter {
  /** Per conversation, drafts not yet in a write; insertion order is the fairness order. */
  private queues = new Map<string, Pending[]>();
  /** Conversations with a write in flight. */
  private busy = new Set<string>();
  private inFlight = 0;
  private pendingCount = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly maxBatch: number;
  private readonly maxInFlight: number;
  private readonly onWrite: ((drafts: number) => void) | undefined;

  constructor(
    private readonly store: MessageStore,
    private readonly onAppended: (e: StoredEvent, acceptedAt: number, senderRead: number | undefined) => void,
    opts: EventWriterOptions = {},
  ) {
    this.maxBatch = opts.maxBatch ?? 512;
    // One statement per write on a store with appendMany. Four rather than one: on PostgreSQL,
    // one write in flight (every append that arrives during a commit waits for it, then goes in
    // the next) cut its CPU per append by 5-25% at 200-400 appends/s but multiplied the append
    // p99 by 4-7 (docs/message-log.md); PostgreSQL already shares one WAL flush among the
    // commits in flight. Batches still form when the store falls behind. Without appendMany
    // each write is one append per conversation in parallel and finishes with its slowest, so
    // allow more at once.
    this.maxInFlight = opts.maxInFlight ?? (store.appendMany ? 4 : 32);
    this.onWrite = opts.onWrite;
  }

  write(conv: string, draft: EventDraft, acceptedAt = Date.now()): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      let q = this.queues.get(conv);
      if (!q) this.queues.set(conv, (q = []));
      q.push({ draft, acceptedAt, resolve, reject });
      this.pendingCount++;
      this.pump();
    });
  }

  /** Resolves once every write accepted so far has finished (for graceful drain). */
  idle(): Promise<void> {
    if (this.pendingCount === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Starts writes while there is room and a conversation with queued drafts is not busy. */
  private pump() {
    while (this.inFlight < this.maxInFlight) {
      const groups: { conv: string; items: Pending[] }[] = [];
      let size = 0;
      for (const [conv, q] of this.queues) {
        if (this.busy.has(conv)) continue;
        const items = q.splice(0, this.maxBatch - size);
        if (q.length === 0) this.queues.delete(conv);
        else {
          // Re-insert at the end: the next write starts with the other conversations.
          this.queues.delete(conv);
          this.queues.set(conv, q);
        }
        groups.push({ conv, items });
        size += items.length;
        if (size >= this.maxBatch) break;
      }
      if (groups.length === 0) return;
      for (const g of groups) this.busy.add(g.conv);
      this.inFlight++;
      void this.run(groups);
    }
  }

  private async run(groups: { conv: string; items: Pending[] }[]) {
    try {
      await this.commit(groups);
    } finally {
      this.inFlight--;
      for (const g of groups) this.busy.delete(g.conv);
      for (const g of groups) this.pendingCount -= g.items.length;
      if (this.pendingCount === 0) for (const w of this.idleWaiters.splice(0)) w();
      this.pump();
    }
  }

  private async commit(groups: { conv: string; items: Pending[] }[]) {
    const outcomes = await this.append(groups.map((g) => ({ conv: g.conv, drafts: g.items.map((p) => p.draft) })));
    const refused: { conv: string; items: Pending[] }[] = [];
    groups.forEach((g, k) => {
      const o = outcomes[k]!;
      if (o.status === 'rejected') {
        if (o.reason instanceof AppendRefused && g.items.length > 1) refused.push(g);
        else for (const p of g.items) p.reject(o.reason);
        return;
      }
      this.settle(g.items, o.value);
    });
    // Nothing of a refused group was written: its drafts go again one at a time, in order (the
    // conversation stays busy meanwhile), and only the one the store refuses alone fails.
    for (const g of refused)
      for (const p of g.items) {
        const [o] = await this.append([{ conv: g.conv, drafts: [p.draft] }]);
        if (o!.status === 'rejected') p.reject(o!.reason);
        else this.settle([p], o!.value);
      }
  }

  private async append(batches: AppendBatch[]): Promise<PromiseSettledResult<AppendResult[]>[]> {
    this.onWrite?.(batches.reduce((n, b) => n + b.drafts.length, 0));
    try {
      return await appendBatches(this.store, batches);
    } catch (err) {
      return batches.map(() => ({ status: 'rejected', reason: err }));
    }
  }

  private settle(items: Pending[], results: AppendResult[]) {
    results.forEach((r, i) => {
      if (!r.duplicate) this.onAppended(r.event, items[i]!.acceptedAt, r.senderRead);
    });
    results.forEach((r, i) => items[i]!.resolve(r));
  }
}
