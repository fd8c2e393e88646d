import type { Database } from '../db/database.ts';
import type { Presence } from '../hub/presence.ts';
import type { Logger } from '../observability/logger.ts';
import type { StoredEvent } from '../store/message-store.ts';

export type NotifyChannel = 'push' | 'email' | 'webhook';
export interface TriggerJob {
  user: string;
  conv: string;
  seq: number;
}

/** Where triggers put jobs: BullMQ queues with Redis, an in-process scheduler without. */
export interface NotifyScheduler {
  /** Queues jobs, coalescing them per (user, conversation) (email: per user) while one is pending. */
  enqueue(channel: NotifyChannel, jobs: TriggerJob[]): Promise<void>;
  close(): Promise<void>;
}

// One constant statement text whatever the number of conversations, so the driver prepares it
// once per connection (an IN list of n parameters was a new statement for every n).
const MEMBERS_SQL = `select m.conversation_id, m.user_id, exists (select 1 from webhooks w where w.user_id = m.user_id) as hooks
  from jsonb_array_elements_text($1::text::jsonb) as q(conv)
  join members m on m.conversation_id = q.conv::uuid`;

/** How long events gather before a trigger batch runs (notifications wait seconds anyway). */
export const TRIGGER_WINDOW_MS = 50;

/**
 * The hub's notification port. Sees every event this replica made durable, and once per
 * window (`windowMs`, default 50 ms), off the hot path, works out who may need a notification:
 * members other than the author who have no socket on any replica (one batched presence call),
 * or who are mentioned (an edit counts only for whom it mentions). One membership query and one
 * presence call per batch, and the jobs of the batch leave together: at 100 messages/s a
 * replica makes ~20 of each per second, not 100, and push delays are seconds long anyway.
 */
export class NotifyTrigger {
  private batch: StoredEvent[] = [];
  private scheduled = false;
  private inflight = new Set<Promise<void>>();
  /**
   * Keys this replica queued a job for, until that job's delay has passed: a job cannot have
   * started before, so the queue would drop another one anyway (it covers every seq up to the
   * head when it runs). Saves the Redis round trips of a busy room.
   */
  private pending = new Map<string, number>();
  private pendingSweep = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly d: {
      /** A prepared statement on the main database (Database.query). */
      query: Database['query'];
      presence: Presence;
      scheduler: NotifyScheduler;
      logger: Logger;
      delays: Record<NotifyChannel, number>;
      now?: () => number;
      windowMs?: number;
    },
  ) {}

  /** Forgets what was queued, as if every delay had passed (tests promote delayed jobs). */
  forgetPending() {
    this.pending.clear();
  }

  private fresh(channel: NotifyChannel, jobs: TriggerJob[], now: number) {
    const out: TriggerJob[] = [];
    const until = now + this.d.delays[channel];
    for (const j of jobs) {
      const key = channel === 'email' ? `email:${j.user}` : `${channel}:${j.user}:${j.conv}`;
      const t = this.pending.get(key);
      if (t !== undefined && t > now) continue;
      this.pending.set(key, until);
      out.push(j);
    }
    if (this.pending.size > 100_000 || now - this.pendingSweep > 60_000) {
      this.pendingSweep = now;
      for (const [k, t] of this.pending) if (t <= now) this.pending.delete(k);
    }
    return out;
  }

  appended(e: StoredEvent) {
    if (!e.from) return;
    if (e.kind !== 'message' && !(e.kind === 'edit' && Array.isArray(e.data.mentions) && e.data.mentions.length)) return;
    this.batch.push(e);
    if (this.scheduled) return;
    this.scheduled = true;
    this.timer = setTimeout(() => this.run(), this.d.windowMs ?? TRIGGER_WINDOW_MS);
  }

  private run() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.scheduled = false;
    const events = this.batch;
    this.batch = [];
    const p = this.flush(events).catch((err) => this.d.logger.warn({ err: (err as Error).message }, 'notification trigger failed'));
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  /** Runs the batch that is gathering now, and waits for every batch in flight (drain, tests). */
  async idle() {
    while (this.scheduled || this.inflight.size) {
      if (this.scheduled) this.run();
      await Promise.all(this.inflight);
    }
  }

  private async flush(events: StoredEvent[]) {
    const convs = [...new Set(events.map((e) => e.conv))];
    // One constant statement text whatever the number of conversations, so the driver prepares
    // it once per connection (an IN list of n parameters was a new statement for every n).
    const rows = await this.d.query<{ conversation_id: string; user_id: string; hooks: boolean }>(MEMBERS_SQL, [JSON.stringify(convs)]);
    const byConv = new Map<string, string[]>();
    const hooks = new Set<string>();
    for (const r of rows) {
      let list = byConv.get(r.conversation_id);
      if (!list) byConv.set(r.conversation_id, (list = []));
      list.push(r.user_id);
      if (r.hooks) hooks.add(r.user_id);
    }
    // (user, conv) → newest seq, and whether a mention makes it due whatever the presence.
    const due = new Map<string, { user: string; conv: string; seq: number; mentioned: boolean }>();
    const ask = new Set<string>();
    for (const e of events) {
      const mentions = new Set(Array.isArray(e.data.mentions) ? (e.data.mentions as string[]) : []);
      for (const user of byConv.get(e.conv) ?? []) {
        if (user === e.from) continue;
        const mentioned = mentions.has(user);
        if (e.kind === 'edit' && !mentioned) continue;
        const key = `${user}:${e.conv}`;
        const cur = due.get(key);
        due.set(key, { user, conv: e.conv, seq: Math.max(cur?.seq ?? 0, e.seq), mentioned: (cur?.mentioned ?? false) || mentioned });
        if (!mentioned) ask.add(user);
      }
    }
    if (!due.size) return;
    const online = ask.size ? await this.d.presence.online([...ask]) : new Set<string>();
    const push: TriggerJob[] = [];
    const email: TriggerJob[] = [];
    const webhook: TriggerJob[] = [];
    for (const j of due.values()) {
      const offline = !online.has(j.user);
      if (!offline && !j.mentioned) continue;
      const job = { user: j.user, conv: j.conv, seq: j.seq };
      push.push(job);
      if (offline) email.push(job);
      if (hooks.has(j.user)) webhook.push(job);
    }
    const now = this.d.now?.() ?? Date.now();
    const batches = [['push', push], ['email', email], ['webhook', webhook]] as const;
    await Promise.all(
      batches.map(([channel, jobs]) => {
        const todo = this.fresh(channel, jobs, now);
        return todo.length ? this.d.scheduler.enqueue(channel, todo) : null;
      }),
    );
  }
}
