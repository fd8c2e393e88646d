import type { Database } from '../db/database.ts';
import type { Presence } from '../presence/presence.ts';
import type { Logger } from '../observability/logger.ts';
import type { StoredEvent } from '../store/message-store.ts';
import { notifyKey, type NotifyChannel, type NotifyJob } from './notify-jobs.ts';
import type { NotifyScheduler } from './notify-scheduler.ts';

// One constant statement text whatever the number of conversations, so the driver prepares it
// once per connection (an IN list of n parameters was a new statement for every n). With each
// member, the members of the same conversation they blocked: nothing those send notifies them.
const MEMBERS_SQL = `select m.conversation_id, m.user_id,
    (select json_agg(b.blocked_id) from blocks b
     where b.blocker_id = m.user_id
       and exists (select 1 from members o where o.conversation_id = m.conversation_id and o.user_id = b.blocked_id)) as blocked
  from jsonb_array_elements_text($1::text::jsonb) as q(conv)
  join members m on m.conversation_id = q.conv::uuid`;

/** A conversation's members, and who among them blocked whom (`<blocker>:<blocked>`). */
interface ConvMembers {
  users: string[];
  blocks?: Set<string>;
}

/** Which of the users due a notification have a webhook (asked only for them, never cached). */
const HOOKS_SQL = `select distinct w.user_id from jsonb_array_elements_text($1::text::jsonb) as q(u)
  join webhooks w on w.user_id = q.u::uuid`;

/**
 * How long the trigger reuses a conversation's member list. Every replica hears every
 * membership change and every block between members (the membership channel), which drops
 * the list at once (`membershipChanged`), and all of them after the bus reconnects; the limit
 * bounds what a lost message could leave stale. A stale list costs nothing wrong: a member who
 * just left still in it gets a job that finds no membership when it runs (the send plan reads
 * it) and sends nothing.
 */
export const MEMBER_CACHE_MS = 30_000;

/** How long events gather before a trigger batch runs (notifications wait seconds anyway). */
export const TRIGGER_WINDOW_MS = 50;

/**
 * The hub's notification port. Sees every event this replica made durable, and once per
 * window (`windowMs`, default 50 ms), off the hot path, works out who may need a notification:
 * members other than the author who have no socket on any replica (one batched presence call,
 * for the members without a socket on this replica), or who are mentioned (an edit counts only
 * for whom it mentions). Member lists are kept per conversation (MEMBER_CACHE_MS, dropped on
 * every membership change), so a busy room costs no membership query per batch; the webhook
 * lookup is made only for the users due a push. The jobs of a batch leave together: at 100
 * messages/s a replica makes ~20 presence calls per second, not 100, and push delays are
 * seconds long anyway. (The bench's fanout showed the per-batch membership query costing
 * PostgreSQL more than the appends themselves: 2.2 ms for ~140 rows, 20 times a second.)
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
  /** Member lists of conversations (see MEMBER_CACHE_MS), and a counter bumped by each drop. */
  private members = new Map<string, ConvMembers & { until: number }>();
  private membersEpoch = 0;
  /**
   * Whether a user has a socket on this replica (the hub sets it): such a user is online
   * without asking the presence store, which then gets only the others.
   */
  localOnline: ((userId: string) => boolean) | null = null;

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

  /** A conversation's membership changed (any replica): its member list is read again. */
  membershipChanged(conv: string) {
    this.membersEpoch++;
    this.members.delete(conv);
  }

  /** Every member list is read again (the bus reconnected: a change may have been missed). */
  forgetMembers() {
    this.membersEpoch++;
    this.members.clear();
  }

  /** The member lists of these conversations: from the cache, the rest in one statement. */
  private async membersOf(convs: string[], now: number): Promise<Map<string, ConvMembers>> {
    const out = new Map<string, ConvMembers>();
    const missing: string[] = [];
    for (const c of convs) {
      const hit = this.members.get(c);
      if (hit && hit.until > now) out.set(c, hit);
      else missing.push(c);
    }
    if (!missing.length) return out;
    const epoch = this.membersEpoch;
    const rows = await this.d.query<{ conversation_id: string; user_id: string; blocked: string[] | string | null }>(MEMBERS_SQL, [
      JSON.stringify(missing),
    ]);
    for (const c of missing) out.set(c, { users: [] });
    for (const r of rows) {
      const m = out.get(r.conversation_id);
      if (!m) continue;
      m.users.push(r.user_id);
      const blocked = typeof r.blocked === 'string' ? (JSON.parse(r.blocked) as string[]) : r.blocked;
      for (const b of blocked ?? []) (m.blocks ??= new Set()).add(`${r.user_id}:${b}`);
    }
    // A change heard while the statement ran may not be in its rows: not kept then.
    if (epoch === this.membersEpoch) {
      if (this.members.size > 50_000) this.members.clear();
      for (const c of missing) this.members.set(c, { ...out.get(c)!, until: now + MEMBER_CACHE_MS });
    }
    return out;
  }

  /** Forgets what was queued, as if every delay had passed (tests promote delayed jobs). */
  forgetPending() {
    this.pending.clear();
  }

  private fresh(channel: NotifyChannel, jobs: NotifyJob[], now: number) {
    const out: NotifyJob[] = [];
    const until = now + this.d.delays[channel];
    for (const j of jobs) {
      const key = notifyKey(channel, j);
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
    const now = this.d.now?.() ?? Date.now();
    const byConv = await this.membersOf([...new Set(events.map((e) => e.conv))], now);
    // (user, conv) → newest seq, and whether a mention makes it due whatever the presence.
    const due = new Map<string, { user: string; conv: string; seq: number; mentioned: boolean }>();
    const ask = new Set<string>();
    for (const e of events) {
      const mentions = new Set(Array.isArray(e.data.mentions) ? (e.data.mentions as string[]) : []);
      const members = byConv.get(e.conv);
      for (const user of members?.users ?? []) {
        if (user === e.from || members!.blocks?.has(`${user}:${e.from}`)) continue;
        const mentioned = mentions.has(user);
        if (e.kind === 'edit' && !mentioned) continue;
        const key = `${user}:${e.conv}`;
        const cur = due.get(key);
        due.set(key, { user, conv: e.conv, seq: Math.max(cur?.seq ?? 0, e.seq), mentioned: (cur?.mentioned ?? false) || mentioned });
        if (!mentioned) ask.add(user);
      }
    }
    if (!due.size) return;
    // Members with a socket here are online; the presence store is asked about the others.
    const here: string[] = [];
    const remote: string[] = [];
    for (const u of ask) (this.localOnline?.(u) ? here : remote).push(u);
    const online = remote.length ? await this.d.presence.online(remote) : new Set<string>();
    for (const u of here) online.add(u);
    const push: NotifyJob[] = [];
    const email: NotifyJob[] = [];
    for (const j of due.values()) {
      const offline = !online.has(j.user);
      if (!offline && !j.mentioned) continue;
      const job = { user: j.user, conv: j.conv, seq: j.seq };
      push.push(job);
      if (offline) email.push(job);
    }
    // Webhooks go to the users due a push who have one: looked up for them only, and fresh, so
    // a webhook registered a moment ago is used for the next message.
    const hooks = push.length
      ? new Set(
          (await this.d.query<{ user_id: string }>(HOOKS_SQL, [JSON.stringify([...new Set(push.map((j) => j.user))])])).map(
            (r) => r.user_id,
          ),
        )
      : new Set<string>();
    const webhook = push.filter((j) => hooks.has(j.user));
    const batches = [
      ['push', push],
      ['email', email],
      ['webhook', webhook],
    ] as const;
    await Promise.all(
      batches.map(([channel, jobs]) => {
        const todo = this.fresh(channel, jobs, now);
        return todo.length ? this.d.scheduler.enqueue(channel, todo) : null;
      }),
    );
  }
}
