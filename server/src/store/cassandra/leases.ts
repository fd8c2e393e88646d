import cassandra from 'cassandra-driver';
import type { Logger } from '../../observability/logger.ts';
import type { StoredEvent } from '../message-store.ts';
import { BUCKET_SIZE, bucketOf, type Cql, num, Q, sleep, str, toEvent } from './cql.ts';
import { MessageStoreUnavailableError } from './errors.ts';
import type { EventLog } from './event-log.ts';

/** Seqs reserved per lightweight transaction. A released lease gives back what it did not use. */
export const LEASE_RANGE = BUCKET_SIZE;

/**
 * What happened to the seqs handed out so far in a lease: [] when every one is published or
 * voided, the seqs still to be voided when an append could not write them, null when the lease
 * can no longer be trusted (it is dropped and taken over afresh).
 */
export type Tail = number[] | null;

/** A conversation's lease as this store instance holds it. */
export interface Lease {
  conv: string;
  epoch: number;
  /** Next seq to hand out, and the last one reserved. */
  next: number;
  end: number;
  /** Highest seq published by this lease (at first: every seq it found before its own). */
  published: number;
  /** Settles once every seq handed out so far is settled (see Tail); appends publish in its order. */
  tail: Promise<Tail>;
  /** The lookup-and-register phase of cid idempotency, one append at a time (see CassandraMessageStore). */
  gate: Promise<void>;
  /** Keyed drafts of appends in flight: their event once published, null if their append failed. */
  inflight: Map<string, Promise<StoredEvent | null>>;
  users: number;
  lastUsed: number;
  /** Set once a release began or the lease was lost: new appends wait for `gone`, then acquire again. */
  closing: boolean;
  /** Dropped without a release: its appends still in flight must not publish (a take-over reuses their seqs). */
  lost?: boolean;
  gone?: Promise<void>;
  idle?: () => void;
  extending?: Promise<void>;
}

export interface LeasesOptions {
  takeoverMs: number;
  handoverWaitMs: number;
  idleMs: number;
  pollMs: number;
}

/**
 * Conversation leases. A store instance appends to a conversation only while it holds the
 * conversation's lease: acquiring it is one LWT on the allocator (static columns of
 * `conversation_cids`) that reserves LEASE_RANGE seqs, which the holder then hands out with no
 * further round (another LWT per LEASE_RANGE seqs). Since the holder is the conversation's only
 * writer, a cid is checked by a plain read and claimed by a plain insert.
 * - Hand-over: an instance that wants a conversation held by a live instance writes a request
 *   into `lease_requests` under the holder's id; the holder polls its requests every pollMs,
 *   lets its appends in flight finish, and releases (LWT: holder = null, last_seq = the last seq
 *   it used), so the unused rest of its range goes back and nobody waits on it.
 * - Idle leases are released after idleMs, and all on close().
 * - Liveness: each instance writes alive_until = now + takeoverMs to `store_instances` every
 *   takeoverMs / 4, and starts no write once its last successful beat is takeoverMs / 2 old.
 *   A lease whose holder's alive_until has passed is taken over: the taker voids the unwritten
 *   seqs below the highest one written, reuses the rest of the dead range, and publishes with
 *   its higher epoch, which a late durable_seq write of the dead holder cannot beat.
 */
export class Leases {
  readonly id = cassandra.types.Uuid.random().toString();
  private readonly held = new Map<string, Lease>();
  private readonly acquiring = new Map<string, Promise<void>>();
  /** Leases dropped here: taking one over waits for its appends in flight to finish first. */
  private readonly dropped = new Map<string, Lease>();
  /** requested_at of the last hand-over request acted upon, per conversation. */
  private readonly handled = new Map<string, number>();
  private fenceAt = 0;
  private timers: NodeJS.Timeout[] = [];
  private polling = false;
  /** No new appends (stop() began). */
  private closed = false;
  /** No writes at all (stopped, or a test's crash). */
  private stopped = false;

  /** Called when a lease is taken for a conversation never appended to before. */
  onNewConversation?: (conv: string) => void;

  constructor(
    private readonly cql: Cql,
    private readonly log: EventLog,
    private readonly logger: Logger,
    private readonly opts: LeasesOptions,
  ) {}

  async start() {
    await this.beat();
    const every = (ms: number, fn: () => Promise<void>) => {
      const t = setInterval(
        () => void fn().catch((err) => this.logger.warn({ err: (err as Error).message }, 'cassandra lease housekeeping failed')),
        ms,
      );
      t.unref();
      this.timers.push(t);
    };
    every(Math.max(50, this.opts.takeoverMs / 4), () => this.beat());
    every(this.opts.pollMs, () => this.poll());
    every(Math.max(50, this.opts.idleMs / 2), () => this.releaseIdle());
  }

  /** Releases every lease, then marks this instance gone so nobody waits for it. */
  async stop() {
    // Appends in flight finish (the liveness established so far lasts takeoverMs / 2); new ones are refused.
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await Promise.allSettled([...this.acquiring.values()]);
    await Promise.allSettled([...this.held.values()].map((l) => this.release(l)));
    this.stopped = true;
    // Failing that, the beat times out and the others take over after takeoverMs.
    await this.cql
      .q(Q.instanceBeat, [new Date(0), this.id], { isIdempotent: true })
      .catch((err: Error) => this.logger.warn({ err: err.message }, 'marking the store instance gone failed'));
  }

  /** Stops the heartbeat and the request poller (stop(), and tests simulating a crash). */
  stopTimers() {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  /** Whether this instance may still start a write: its liveness is established for at least a while. */
  alive() {
    return !this.stopped && performance.now() < this.fenceAt;
  }

  private async beat() {
    const sent = performance.now();
    await this.cql.q(Q.instanceBeat, [new Date(Date.now() + this.opts.takeoverMs), this.id], { isIdempotent: true });
    if (!this.stopped) this.fenceAt = Math.max(this.fenceAt, sent + this.opts.takeoverMs / 2);
  }

  // ---- using a lease ---------------------------------------------------------------------

  /** The conversation's lease for one append (acquired, or handed over, if needed); pair with done(). */
  async use(conv: string): Promise<Lease> {
    const deadline = performance.now() + this.opts.handoverWaitMs;
    for (;;) {
      if (this.closed || this.stopped) throw new MessageStoreUnavailableError('the message store is closed');
      const l = this.held.get(conv);
      if (l && !l.closing) {
        l.users++;
        return l;
      }
      if (l) {
        await l.gone;
        continue;
      }
      let p = this.acquiring.get(conv);
      if (!p) {
        p = this.acquire(conv, deadline).finally(() => this.acquiring.delete(conv));
        this.acquiring.set(conv, p);
      }
      await p;
    }
  }

  /** Whether an append to the conversation can start at once (its lease is here and not being given back). */
  ready(conv: string): boolean {
    const l = this.held.get(conv);
    return l !== undefined && !l.closing;
  }

  done(l: Lease) {
    l.users--;
    l.lastUsed = performance.now();
    if (l.users === 0) l.idle?.();
  }

  /** Hands out n consecutive seqs (reserving another range first when this one is used up). */
  async take(l: Lease, n: number): Promise<number> {
    while (l.next + n - 1 > l.end) {
      l.extending ??= this.extend(l).finally(() => (l.extending = undefined));
      await l.extending;
    }
    const start = l.next;
    l.next += n;
    return start;
  }

  private async extend(l: Lease) {
    const end = l.end + Math.max(LEASE_RANGE, l.next - l.end);
    let applied = false;
    try {
      applied = (await this.cql.q(Q.leaseExtend, [end, l.conv, this.id, l.epoch])).wasApplied();
    } catch (err) {
      this.lose(l, 'could not extend');
      throw new MessageStoreUnavailableError(`seq range of ${l.conv} could not be extended`, { cause: err });
    }
    if (!applied) {
      this.lose(l, 'taken over');
      throw new MessageStoreUnavailableError(`the lease of ${l.conv} was taken over; retry`);
    }
    l.end = end;
  }

  /** Forgets a lease without releasing it: the next append takes it over (scanning what it wrote). */
  lose(l: Lease, why: string) {
    l.lost = true;
    if (this.held.get(l.conv) === l) {
      this.held.delete(l.conv);
      this.dropped.set(l.conv, l);
    }
    if (!l.closing) {
      l.closing = true;
      l.gone = Promise.resolve();
      this.logger.warn({ conv: l.conv, why }, 'dropped a cassandra conversation lease');
    }
  }

  // ---- acquiring -------------------------------------------------------------------------

  private async acquire(conv: string, deadline: number) {
    let askedAt = -Infinity;
    for (let attempt = 0; ; attempt++) {
      if (this.stopped) throw new MessageStoreUnavailableError('the message store is closed');
      if (!this.alive())
        await this.beat().catch((err: Error) =>
          this.logger.warn({ err: err.message, conv }, 'cassandra instance beat failed before acquiring a lease'),
        );
      const row = (await this.cql.q(Q.leaseRow, [conv], { isIdempotent: true })).first();
      const holder = str(row?.get('holder'));
      const epoch = num(row?.get('lease_epoch'));
      const rawLast = num(row?.get('last_seq'));
      if (holder != null && holder !== this.id && (await this.isAlive(holder))) {
        if (performance.now() > deadline)
          throw new MessageStoreUnavailableError(`conversation ${conv} is held by another store instance; retry`);
        if (performance.now() - askedAt > 500) {
          // Again every 500 ms while waiting: requests live 5 s.
          askedAt = performance.now();
          await this.cql.q(Q.leaseAsk, [holder, conv, new Date()], { isIdempotent: true });
        }
        await sleep(Math.min(20, 2 + attempt) * (0.5 + Math.random()));
        continue;
      }
      // Free, or its holder is dead, or it is ours but was dropped here: take it.
      const takeover = holder != null;
      // Nothing writes conversation_heads.last_seq any more: a conversation untouched since
      // migration 002 starts from it.
      const last = rawLast ?? num((await this.cql.q(Q.legacyHead, [conv], { isIdempotent: true })).first()?.get('last_seq')) ?? 0;
      const newEpoch = (epoch ?? 0) + 1;
      const rs = await this.cql.q(Q.leaseTake, [this.id, newEpoch, takeover ? last : last + LEASE_RANGE, conv, holder, epoch, rawLast]);
      if (!rs.wasApplied()) {
        await sleep(Math.random() * Math.min(50, 2 ** attempt));
        continue;
      }
      const base: Lease = {
        conv,
        epoch: newEpoch,
        next: last + 1,
        end: takeover ? last : last + LEASE_RANGE,
        published: last,
        tail: Promise.resolve([]),
        gate: Promise.resolve(),
        inflight: new Map(),
        users: 0,
        lastUsed: performance.now(),
        closing: false,
      };
      if (takeover) {
        const mine = this.dropped.get(conv);
        if (mine) {
          await mine.tail;
          this.dropped.delete(conv);
        }
        const h = await this.takeOver(conv, newEpoch, last);
        base.next = h + 1;
        base.published = h;
        base.end = Math.max(base.end, h);
      } else {
        // Seqs allocated before leases (or by a test) and not yet durable: the first append
        // waits for them, and voids them after takeoverMs.
        base.tail = this.log.waitDurable(conv, last).then(
          (): Tail => [],
          (): Tail => null,
        );
      }
      if (!row) this.onNewConversation?.(conv);
      this.held.set(conv, base);
      return;
    }
  }

  /**
   * The lease was held by a dead instance (or dropped here): find the highest seq it wrote above
   * durable_seq, void the holes below it, give the written events their cid claims and sender
   * index (a crash can leave an event without them), and publish up to it under the new epoch.
   */
  private async takeOver(conv: string, epoch: number, last: number): Promise<number> {
    const { durable } = await this.cql.head(conv);
    const found: StoredEvent[] = [];
    for (let b = bucketOf(durable + 1); durable < last && b <= bucketOf(last); b++) {
      const rows = await this.cql.all(Q.eventRange, [
        conv,
        b,
        Math.max(durable + 1, b * BUCKET_SIZE),
        Math.min(last, b * BUCKET_SIZE + BUCKET_SIZE - 1),
      ]);
      found.push(...rows.map(toEvent));
    }
    const h = found.length ? Math.max(durable, ...found.map((e) => e.seq)) : durable;
    const present = new Set(found.map((e) => e.seq));
    const missing: number[] = [];
    for (let s = durable + 1; s <= h; s++) if (!present.has(s)) missing.push(s);
    this.logger.warn({ conv, durable, written: h, reserved: last, voided: missing.length }, 'took over the lease of a dead store instance');
    await this.log.writeVoids(conv, missing);
    await this.log.writeIndexes(
      conv,
      found.filter((e) => e.data.void !== true),
    );
    const lastMessage = found.filter((e) => e.kind === 'message').at(-1)?.seq;
    await this.log.publish(conv, epoch, h, lastMessage);
    return h;
  }

  private async isAlive(holder: string): Promise<boolean> {
    const row = (await this.cql.q(Q.instanceRow, [holder], { isIdempotent: true })).first();
    const until = (row?.get('alive_until') as Date | null)?.getTime() ?? 0;
    return until > Date.now();
  }

  // ---- releasing -------------------------------------------------------------------------

  private async poll() {
    if (this.polling || this.stopped) return;
    this.polling = true;
    try {
      const rows = await this.cql.all(Q.leaseAsked, [this.id]);
      for (const r of rows) {
        const conv = String(r.get('conversation_id'));
        const at = (r.get('requested_at') as Date | null)?.getTime() ?? 0;
        if ((this.handled.get(conv) ?? -1) >= at) continue;
        this.handled.set(conv, at);
        if (this.handled.size > 10_000) this.handled.delete(this.handled.keys().next().value!);
        const l = this.held.get(conv);
        if (l) void this.release(l);
        else if (!this.acquiring.has(conv)) void this.releaseDropped(conv);
      }
    } finally {
      this.polling = false;
    }
  }

  /** A request for a lease this instance dropped (Cassandra still names it): take it over, then give it back. */
  private async releaseDropped(conv: string) {
    const row = (await this.cql.q(Q.leaseRow, [conv], { isIdempotent: true })).first();
    if (str(row?.get('holder')) !== this.id) return;
    const l = await this.use(conv);
    this.done(l);
    await this.release(l);
  }

  private async releaseIdle() {
    const now = performance.now();
    for (const l of this.held.values()) if (l.users === 0 && !l.closing && now - l.lastUsed > this.opts.idleMs) void this.release(l);
  }

  /** Lets the appends using the lease finish, then gives it back with the seqs it did not use. */
  release(l: Lease): Promise<void> {
    if (l.closing) return l.gone ?? Promise.resolve();
    l.closing = true;
    l.gone = (async () => {
      if (l.users > 0) await new Promise<void>((r) => (l.idle = r));
      // Only waits for a reservation in flight: its failure reached the take() that started it.
      await l.extending?.catch(() => {});
      const tail = await l.tail;
      if (this.held.get(l.conv) !== l) return;
      if (tail === null || tail.length) {
        this.lose(l, 'unsettled seqs');
        return;
      }
      try {
        await this.cql.q(Q.leaseRelease, [l.next - 1, l.conv, this.id, l.epoch]);
      } catch (err) {
        this.logger.warn({ err: (err as Error).message, conv: l.conv }, 'could not release a cassandra conversation lease');
      } finally {
        if (this.held.get(l.conv) === l) this.held.delete(l.conv);
      }
    })();
    return l.gone;
  }
}
