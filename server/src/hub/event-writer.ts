import { appendBatches, type AppendResult, type EventDraft, type MessageStore, type StoredEvent } from '../store/message-store.ts';

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
}

/**
 * Appends events to the message store with group commit across conversations: whatever queued
 * up while earlier writes were in flight goes out as one `appendMany` (one statement on
 * PostgreSQL), up to `maxInFlight` writes at once. A conversation is in at most one write at a
 * time, so its events keep the order they were accepted in. Calls `onAppended` for each new
 * event once it is durable, in seq order per conversation, before resolving its caller.
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

  constructor(
    private readonly store: MessageStore,
    private readonly onAppended: (e: StoredEvent, acceptedAt: number, senderRead: number | undefined) => void,
    opts: EventWriterOptions = {},
  ) {
    this.maxBatch = opts.maxBatch ?? 512;
    // One statement per write on a store with appendMany; otherwise each write is one append
    // per conversation in parallel and finishes with its slowest, so allow more at once.
    this.maxInFlight = opts.maxInFlight ?? (store.appendMany ? 4 : 32);
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
    let outcomes: PromiseSettledResult<AppendResult[]>[];
    try {
      outcomes = await appendBatches(
        this.store,
        groups.map((g) => ({ conv: g.conv, drafts: g.items.map((p) => p.draft) })),
      );
    } catch (err) {
      outcomes = groups.map(() => ({ status: 'rejected', reason: err }));
    }
    groups.forEach((g, k) => {
      const o = outcomes[k]!;
      if (o.status === 'rejected') {
        for (const p of g.items) p.reject(o.reason);
        return;
      }
      o.value.forEach((r, i) => {
        if (!r.duplicate) this.onAppended(r.event, g.items[i]!.acceptedAt, r.senderRead);
      });
      o.value.forEach((r, i) => g.items[i]!.resolve(r));
    });
  }
}
