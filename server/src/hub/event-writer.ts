import type { AppendResult, EventDraft, MessageStore, StoredEvent } from '../store/message-store.ts';

interface Pending {
  draft: EventDraft;
  acceptedAt: number;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

/** Most drafts one store append takes; a busy conversation's sends are group-committed. */
const MAX_BATCH = 256;

/**
 * Appends events to the message store, one conversation at a time per replica, batching what
 * queued up while the previous append was in flight (group commit). Calls `onAppended` for each
 * new event once it is durable, in seq order, before resolving its caller.
 */
export class EventWriter {
  private queues = new Map<string, Pending[]>();
  private running = new Set<string>();
  private inflight = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly store: MessageStore,
    private readonly onAppended: (e: StoredEvent, acceptedAt: number) => void,
  ) {}

  write(conv: string, draft: EventDraft, acceptedAt = Date.now()): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      let q = this.queues.get(conv);
      if (!q) this.queues.set(conv, (q = []));
      q.push({ draft, acceptedAt, resolve, reject });
      this.inflight++;
      if (!this.running.has(conv)) void this.run(conv);
    });
  }

  /** Resolves once every write accepted so far has finished (for graceful drain). */
  idle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private async run(conv: string) {
    this.running.add(conv);
    try {
      for (;;) {
        const q = this.queues.get(conv);
        if (!q || q.length === 0) break;
        const batch = q.splice(0, MAX_BATCH);
        try {
          const results = await this.store.append(conv, batch.map((p) => p.draft));
          results.forEach((r, i) => {
            if (!r.duplicate) this.onAppended(r.event, batch[i]!.acceptedAt);
          });
          results.forEach((r, i) => batch[i]!.resolve(r));
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
        this.inflight -= batch.length;
      }
    } finally {
      this.running.delete(conv);
      if (this.queues.get(conv)?.length === 0) this.queues.delete(conv);
      if (this.inflight === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }
}
