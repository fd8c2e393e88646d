import { randomUUID } from 'node:crypto';
import { channels, type Bus } from '../bus/bus.ts';
import { DomainError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { ProtocolErrorCode } from '@hubbub/client/protocol';
import type { ClientFrame } from '../protocol/frames.ts';
import type { MessageStore, StoredEvent } from '../store/message-store.ts';
import { Connection, type SocketLike } from './connection.ts';
import { EventWriter } from './event-writer.ts';
import { Feed } from './feed.ts';
import { presenceOnJoin } from './join-presence.ts';
import type { LimitsDirectory, MembershipDirectory, SocketLimits, SocketLogin, UserControl } from './ports.ts';
import type { Presence } from './presence.ts';
import type { KeyedBuckets } from '../limits/keyed-buckets.ts';
import { ResumeGate } from './resume-gate.ts';
import { busEvent, busFrame, encode, encodeEvent, frameBytes, parseBus, type Frame, type OwnRead } from './wire.ts';

export interface HubLimits {
  maxBodyChars: number;
  ratePerS: number;
  burst: number;
  maxConnectionsPerUser: number;
  heartbeatMs: number;
  maxBuffered: number;
  resumeMaxEvents: number;
  /** How long after `ready` a socket waits for `resume` before live delivery starts. */
  resumeHoldMs: number;
  /**
   * The same for a socket that announced its resume at the upgrade (`/ws?resume=1`): live
   * delivery waits for it, however late it comes, up to this safety limit.
   */
  announcedResumeHoldMs: number;
  /**
   * A user whose last socket closed is announced offline only if they are still offline this
   * long after, so a reconnect within it (reconnect storms, page reloads) is never seen as
   * offline. 0: at once.
   */
  presenceGraceMs?: number;
}

export interface HubDeps {
  store: MessageStore;
  bus: Bus;
  presence: Presence;
  directory: MembershipDirectory;
  logger: Logger;
  metrics: Metrics;
  limits: HubLimits;
  /** Per-user limits (the user's plan); without it every socket has `limits`. */
  userLimits?: LimitsDirectory;
  /** Events replayed by `resume`, per user (limits/budgets.ts); unset: no budget beyond one resume at a time. */
  resumeEvents?: KeyedBuckets;
  /**
   * Sees every event this replica made durable (notification triggers); must not block. Told
   * of every membership change heard on the bus (any user, any replica), and when the bus
   * reconnected (a change may have been missed), for what it keeps about members.
   */
  notify?: { appended(e: StoredEvent): void; membershipChanged?(conv: string): void; forgetMembers?(): void };
}

/** How long a feed with no local sockets keeps its bus subscription (reconnect storms). */
const FEED_LINGER_MS = 30_000;
/** How long an early event waits for the seqs before it before the hub reads them from the store. */
const GAP_WAIT_MS = 40;
/** At most this many contacts' presence is sent after `ready`. */
export const PRESENCE_SNAPSHOT_MAX = 1000;
/** Presence changes gather this long on a replica, then leave in one bus message for all replicas. */
const PRESENCE_BATCH_MS = 50;
/** Every this often, tracked feeds are compared with the store heads (heals anything the bus lost). */
const SWEEP_MS = 3000;

/**
 * The hot path of a replica: local sockets, per-conversation ordered fanout, resume, and the
 * frame handlers. It talks to the bus, the message store and narrow ports, nothing else.
 */
export class Hub {
  readonly writer: EventWriter;
  private feeds = new Map<string, Feed>();
  private byUser = new Map<string, Set<Connection>>();
  private nextId = 1;
  private draining = false;
  /**
   * Every user's channel, by one prefix subscription per replica (resolves once subscribed; a
   * failed one is retried by the next upgrade), and the upgrades in flight for each user:
   * control messages are queued on their watches until the socket has applied its login snapshot.
   */
  private userChannels: Promise<void> | null = null;
  private watching = new Map<string, Set<UserWatch>>();
  private sweepTimer: NodeJS.Timeout;
  /** Connections-per-user limits of users with sockets here, when their plan sets one. */
  private userMaxConns = new Map<string, number>();
  private resumeGate: ResumeGate;
  /** Catch-up reads in flight, shared by the sockets that ask for the same page (`catchUpPage`), and how many asked. */
  private pageReads = new Map<string, { page: Promise<{ seq: number; frame: Frame }[]>; waiters: number }>();
  /** Sockets with frames posted this turn (see `post`). */
  private outbox: Connection[] = [];
  /** What every Connection is made with (one object for all of them). */
  private connOpts: ConstructorParameters<typeof Connection>[3];
  /** Presence changes waiting for the next batch: [user, status, lastSeen, conversations]. */
  private presenceBatch: PresenceChange[] = [];
  private presenceTimer: NodeJS.Timeout | null = null;
  /** Users whose last socket here closed, waiting out the presence grace before `offline`. */
  private goingOffline = new Map<string, NodeJS.Timeout>();

  constructor(private readonly d: HubDeps) {
    this.resumeGate = new ResumeGate(d.resumeEvents);
    this.connOpts = {
      maxBuffered: d.limits.maxBuffered,
      ratePerS: d.limits.ratePerS,
      burst: d.limits.burst,
      wire: d.metrics.wire,
      onClose: (reason) => d.metrics.closes.inc({ reason }),
    };
    this.writer = new EventWriter(d.store, (e, acceptedAt, senderRead) => this.onAppended(e, acceptedAt, senderRead));
    d.bus.onMessage((channel, payload) => this.onBus(channel, payload));
    d.bus.onReconnect(() => {
      d.notify?.forgetMembers?.();
      void this.resyncAll();
    });
    d.presence.onExpired((u) => void this.announcePresence(u, 'offline'));
    this.sweepTimer = setInterval(() => void this.resyncAll(), SWEEP_MS).unref();
  }

  /** Whether the user has a socket on this replica (so is online, whatever the presence store says). */
  hasSocketsOf(userId: string) {
    return this.byUser.has(userId);
  }

  get connectionCount() {
    let n = 0;
    for (const s of this.byUser.values()) n += s.size;
    return n;
  }

  /** Whether a new socket for this user fits the per-user limit on this replica. */
  canAccept(userId: string) {
    return !this.draining && (this.byUser.get(userId)?.size ?? 0) < this.maxConnectionsOf(userId);
  }

  // ---- connection lifecycle --------------------------------------------------------------

  /**
   * Called at the upgrade once the token is verified and before the login snapshot is read:
   * queues what arrives on the user's channel for this socket, so a conversation added or
   * removed or a session revoked after the snapshot still reaches it. Hand the watch to
   * `attach`, or `unwatch` it when the upgrade fails.
   */
  async watchUser(userId: string): Promise<UserWatch> {
    const watch: UserWatch = { userId, queue: [] };
    let set = this.watching.get(userId);
    if (!set) this.watching.set(userId, (set = new Set()));
    set.add(watch);
    try {
      await this.subscribeUserChannels();
    } catch (err) {
      this.unwatch(watch);
      throw err;
    }
    return watch;
  }

  /** Drops a watch whose upgrade did not open a socket. */
  unwatch(watch: UserWatch) {
    const set = this.watching.get(watch.userId);
    if (set?.delete(watch) && set.size === 0) this.watching.delete(watch.userId);
  }

  /**
   * One prefix subscription for every user's channel: a socket's upgrade costs no SUBSCRIBE
   * round trip (a connect storm made one per user), at the price of every replica hearing every
   * user's control messages (membership changes, revocations, plan changes: rare).
   */
  private subscribeUserChannels(): Promise<void> {
    if (!this.userChannels) {
      const sub = Promise.all([this.d.bus.subscribePrefix(channels.user('')), this.d.bus.subscribe(channels.presence)]).then(() => {});
      this.userChannels = sub;
      sub.catch(() => {
        if (this.userChannels === sub) this.userChannels = null;
      });
    }
    return this.userChannels;
  }

  /**
   * Registers an open socket at once (frames it sends are kept until `ready`), then tracks the
   * conversations of its login snapshot and sends `ready`.
   */
  attach(ws: SocketLike, login: SocketLogin, watch: UserWatch, opts: { resumeAnnounced?: boolean } = {}): Connection {
    const user = login.user;
    const conn = new Connection(this.nextId++, user, ws, this.connOpts);
    conn.resumeAnnounced = opts.resumeAnnounced === true;
    // Refused before it is registered: uWS runs the close handler inside `end()`, so a socket
    // counted first and refused after would keep its slot and the gauge (issue 11, defect 1).
    if (!this.canAccept(user.id)) {
      this.unwatch(watch);
      if (this.draining) conn.close('SERVER_RESTART', `restarting; reconnect in ${Math.floor(Math.random() * 2000)}ms`);
      else conn.close('RATE_LIMITED', 'too many connections for this user');
      return conn;
    }
    // From here on the socket's own queue takes the control messages until setup applies them.
    conn.controlQueue = watch.queue;
    let set = this.byUser.get(user.id);
    if (!set) this.byUser.set(user.id, (set = new Set()));
    set.add(conn);
    this.unwatch(watch);
    this.d.metrics.connections.inc();
    void this.setup(conn, login);
    return conn;
  }

  private async setup(conn: Connection, login: SocketLogin) {
    const user = conn.user;
    try {
      const convs = login.convs;
      // The user's plan, read beside the feed setup: the socket starts with its limits. A
      // `limits` message that arrives meanwhile is queued and applied after, so the newest wins.
      const fromLogin = login.subscription !== undefined && this.d.userLimits?.limitsOfSubscription;
      const [, limits] = await Promise.all([
        this.ensureFeeds(convs),
        fromLogin ? this.d.userLimits!.limitsOfSubscription!(login.subscription!) : this.d.userLimits?.limitsOf(user.id),
      ]);
      if (conn.closed) return;
      if (limits) this.applyLimits(conn, limits);
      if (conn.closed) return;
      const heads: Record<string, number> = {};
      for (const c of convs) {
        const feed = this.feeds.get(c)!;
        feed.subscribers.add(conn);
        conn.convs.set(c, { last: feed.delivered, live: false, catching: false });
        heads[c] = feed.delivered;
      }
      conn.send(
        encode({ type: 'ready', user: login.info, session: user.sessionId, convs: heads, heartbeatMs: this.d.limits.heartbeatMs }),
      );
      // What changed since the login snapshot, in order; later messages come straight through.
      await this.applyQueued(conn);
      if (conn.closed) return;
      // Live delivery starts at the client's first frame (normally `resume`) or after the hold.
      const hold: NodeJS.Timeout = setTimeout(() => {
        // Timers run before the loop reads sockets: after a busy turn (a connection storm) the
        // client's `resume` may already be waiting unread. Releasing in the check phase, after
        // this turn's reads, lets it win; releasing first would send live events past the ready
        // heads and the late resume would then resend them (a gap, then duplicates).
        setImmediate(() => {
          if (conn.holdTimer === hold) this.release(conn);
        });
      }, conn.resumeAnnounced ? this.d.limits.announcedResumeHoldMs : this.d.limits.resumeHoldMs);
      conn.holdTimer = hold;
      const backlog = conn.backlog ?? [];
      conn.backlog = null;
      for (const f of backlog) this.handle(conn, f);
      conn.presenceOp = conn.presenceOp.then(async () => {
        if (conn.closed) return;
        conn.presenceCounted = true;
        // With the count, a snapshot: which contacts are online now (later changes arrive as they happen).
        const { first, online } = await this.d.presence.connected(user.id, login.contacts);
        if (!conn.closed && online.size) conn.batch(() => {
          for (const u of online) conn.send(encode({ type: 'presence', user: u, status: 'online' }));
        });
        // Back within the grace of their last socket here: nobody is told they left. They are
        // still announced online when this is their first socket again: a contact whose socket
        // took its presence snapshot in the gap (both reloading at once) would not know.
        const leaving = this.goingOffline.get(user.id);
        if (leaving) {
          clearTimeout(leaving);
          this.goingOffline.delete(user.id);
        }
        if (first) await this.announcePresence(user.id, 'online', convs);
      });
    } catch (err) {
      this.d.logger.error({ err, conn: conn.id }, 'socket setup failed');
      conn.controlQueue = null;
      conn.close('SERVER_RESTART', 'setup failed, reconnect');
    }
  }

  /** Applies the control messages queued for a socket during its upgrade and setup, in order. */
  private async applyQueued(conn: Connection) {
    const queue = conn.controlQueue;
    if (!queue) return;
    while (queue.length && !conn.closed) await this.applyControl(conn, queue.shift()!, false);
    conn.controlQueue = null;
  }

  /** The socket closed (either side). */
  closed(conn: Connection) {
    conn.closed = true;
    if (conn.holdTimer) clearTimeout(conn.holdTimer);
    const set = this.byUser.get(conn.user.id);
    if (set?.delete(conn)) {
      this.d.metrics.connections.dec();
      if (set.size === 0) {
        this.byUser.delete(conn.user.id);
        this.userMaxConns.delete(conn.user.id);
      }
      const convs = [...conn.convs.keys()];
      for (const c of convs) this.unsubscribe(conn, c);
      // Chained after the socket's `connected`, so a quick close never leaves a count behind.
      conn.presenceOp = conn.presenceOp
        .then(async () => {
          if (conn.presenceCounted && (await this.d.presence.disconnected(conn.user.id))) this.offlineAfterGrace(conn.user.id, convs);
        })
        .catch((err) => this.d.logger.warn({ err: (err as Error).message }, 'presence update failed'));
    }
  }

  /** Starts live delivery for every conversation of a socket that is still on hold. */
  private release(conn: Connection) {
    if (conn.holdTimer) clearTimeout(conn.holdTimer);
    conn.holdTimer = null;
    for (const [c, st] of conn.convs) if (!st.live && !st.catching) void this.catchUp(conn, c, Infinity);
  }

  // ---- frames ----------------------------------------------------------------------------

  /** Handles one validated client frame. Order-sensitive parts (send) enqueue synchronously. */
  handle(conn: Connection, f: ClientFrame) {
    if (conn.backlog) {
      conn.backlog.push(f);
      return;
    }
    if (conn.holdTimer && f.type !== 'resume') this.release(conn);
    // Every frame type costs its sender a token; resume also pays for the events it replays.
    if (!conn.bucket.take()) return this.refuse(conn, f.ref, 'slow down');
    switch (f.type) {
      case 'ping':
        conn.send(encode(f.ref ? { type: 'pong', ref: f.ref } : { type: 'pong' }));
        return;
      case 'send':
        return this.onSend(conn, f);
      case 'edit':
      case 'delete':
      case 'react':
        return void this.onModify(conn, f);
      case 'read':
        return void this.onRead(conn, f);
      case 'typing':
        if (!this.member(conn, f.conv, f.ref)) return;
        void this.publishFrame(f.conv, encode({ type: 'typing', conv: f.conv, user: conn.user.id }), conn.user.id);
        return;
      case 'resume':
        return void this.onResume(conn, f);
    }
  }

  /** A refusal for going over a budget: `RATE_LIMITED`, and a socket that keeps at it is closed 4008. */
  private refuse(conn: Connection, ref: string | undefined, message: string) {
    this.error(conn, ref, 'RATE_LIMITED', message);
    if (++conn.strikes > conn.bucket.capacity) conn.close('RATE_LIMITED', 'rate limit exceeded');
  }

  private member(conn: Connection, conv: string, ref?: string) {
    if (conn.convs.has(conv)) return true;
    this.error(conn, ref, 'FORBIDDEN', 'not a member of this conversation');
    return false;
  }

  error(conn: Connection, ref: string | undefined, code: ProtocolErrorCode, message: string) {
    conn.send(encode(ref ? { type: 'error', ref, code, message } : { type: 'error', code, message }));
  }

  private fail(conn: Connection, ref: string | undefined, err: unknown) {
    if (err instanceof DomainError) return this.error(conn, ref, err.code, err.message);
    this.d.logger.error({ err, conn: conn.id }, 'frame failed');
    this.error(conn, ref, 'INTERNAL', 'internal error, retry');
  }

  private onSend(conn: Connection, f: Extract<ClientFrame, { type: 'send' }>) {
    if (!this.member(conn, f.conv, f.ref)) return;
    if (f.body.length > this.d.limits.maxBodyChars) {
      return this.error(conn, f.ref, 'PAYLOAD_TOO_LARGE', `body over ${this.d.limits.maxBodyChars} characters`);
    }
    const data: Record<string, unknown> = { body: f.body };
    if (f.replyTo !== undefined) data.replyTo = f.replyTo;
    if (f.mentions?.length) data.mentions = f.mentions;
    const acceptedAt = Date.now();
    this.writer
      .write(f.conv, { id: randomUUID(), kind: 'message', from: conn.user.id, ts: acceptedAt, cid: f.cid, data }, acceptedAt)
      .then(({ event }) => {
        const ack = { type: 'ack' as const, conv: f.conv, cid: f.cid, seq: event.seq, id: event.id, ts: event.ts };
        conn.send(encode(f.ref ? { ...ack, ref: f.ref } : ack));
        // A sender has read their own message: their cursor moves, and their other devices get a
        // `read` (the other members need no receipt for it), so it never counts as unread for
        // them. A store that moves the cursor in the append's own commit (PostgreSQL) did so, and
        // the `read` travels with the event to the sender's sockets (see `deliver`); otherwise
        // it is moved here and sent on the user's channel. The ack is the reply: a failure here
        // is logged.
        if (this.d.store.movesSenderCursor) return;
        this.markRead(conn.user.id, f.conv, event.seq, 'own').catch((err) => this.d.logger.warn({ err: (err as Error).message }, 'own read cursor failed'));
      })
      .catch((err) => this.fail(conn, f.ref, err));
  }

  /** Moves a read cursor and tells the conversation, or (`own`: after a send) only the user's sockets. */
  private async markRead(userId: string, conv: string, seq: number, to: 'conversation' | 'own' = 'conversation') {
    const moved = await this.d.directory.markRead(conv, userId, seq);
    if (moved == null) return;
    const frame = encode({ type: 'read', conv, user: userId, seq: moved });
    if (to === 'own') await this.controlUser(userId, { k: 'frame', frame });
    else await this.publishFrame(conv, frame);
  }

  private async onModify(conn: Connection, f: Extract<ClientFrame, { type: 'edit' | 'delete' | 'react' }>) {
    if (!this.member(conn, f.conv, f.ref)) return;
    try {
      const [target] = await this.d.store.read(f.conv, { afterSeq: f.seq - 1, limit: 1 });
      if (!target || target.seq !== f.seq || target.kind !== 'message' || target.data.redacted) {
        throw new DomainError('NOT_FOUND', 'no such message');
      }
      if (f.type !== 'react' && target.from !== conn.user.id) {
        throw new DomainError('FORBIDDEN', 'only the author may do that');
      }
      let data: Record<string, unknown>;
      if (f.type === 'edit') {
        if (f.body.length > this.d.limits.maxBodyChars) {
          throw new DomainError('PAYLOAD_TOO_LARGE', `body over ${this.d.limits.maxBodyChars} characters`);
        }
        data = { target: f.seq, body: f.body };
        if (f.mentions?.length) data.mentions = f.mentions;
      } else if (f.type === 'delete') data = { target: f.seq };
      else data = { target: f.seq, emoji: f.emoji, on: f.on };
      const kind = f.type === 'react' ? 'reaction' : f.type;
      const { event } = await this.writer.write(f.conv, { id: randomUUID(), kind, from: conn.user.id, ts: Date.now(), data });
      if (f.type === 'delete') await this.d.store.redact(f.conv, [f.seq]);
      conn.send(encode(f.ref ? { type: 'ok', ref: f.ref, conv: f.conv, seq: event.seq } : { type: 'ok', conv: f.conv, seq: event.seq }));
    } catch (err) {
      this.fail(conn, f.ref, err);
    }
  }

  private async onRead(conn: Connection, f: Extract<ClientFrame, { type: 'read' }>) {
    if (!this.member(conn, f.conv, f.ref)) return;
    try {
      const feed = this.feeds.get(f.conv);
      const seq = Math.min(f.seq, feed?.delivered ?? f.seq);
      await this.markRead(conn.user.id, f.conv, seq);
    } catch (err) {
      this.fail(conn, f.ref, err);
    }
  }

  private async onResume(conn: Connection, f: Extract<ClientFrame, { type: 'resume' }>) {
    // The cost, before any read: one per conversation named, plus the events it will replay.
    let cost = 0;
    for (const [c, lastSeen] of Object.entries(f.convs)) {
      const head = conn.convs.has(c) ? (this.feeds.get(c)?.delivered ?? 0) : 0;
      cost += 1 + Math.min(Math.max(0, head - lastSeen), this.d.limits.resumeMaxEvents);
    }
    const admitted = this.resumeGate.admit(conn, cost);
    if (admitted !== 'ok') {
      const wait = this.resumeGate.retryAfterMs(conn, cost);
      return this.refuse(conn, f.ref, admitted === 'busy' ? 'a resume is already running on this socket' : `resume budget spent, retry in ${wait} ms`);
    }
    if (conn.holdTimer) {
      clearTimeout(conn.holdTimer);
      conn.holdTimer = null;
    }
    try {
      const wanted = new Map(Object.entries(f.convs));
      // Conversations the client did not name go live from the heads sent in `ready`.
      for (const [c, st] of conn.convs) if (!wanted.has(c) && !st.live && !st.catching) void this.catchUp(conn, c, Infinity);
      const convs: Record<string, number> = {};
      for (const [c, lastSeen] of wanted) {
        const st = conn.convs.get(c);
        if (!st) continue; // not (or no longer) a member: nothing to resume
        const feed = this.feeds.get(c)!;
        st.last = Math.min(lastSeen, feed.delivered);
        st.live = false;
        await this.catchUp(conn, c, this.d.limits.resumeMaxEvents);
        if (conn.closed) return;
        convs[c] = conn.convs.get(c)?.last ?? st.last;
      }
      const cursors = await this.d.directory.readCursors(conn.user.id, Object.keys(convs));
      conn.send(encode(f.ref ? { type: 'resumed', ref: f.ref, convs, cursors } : { type: 'resumed', convs, cursors }));
    } catch (err) {
      this.fail(conn, f.ref, err);
    } finally {
      this.resumeGate.done(conn);
    }
  }

  /**
   * Brings one socket up to the feed's head from the store, then makes it live. With a budget,
   * a longer backlog is announced as `gap` (the client pages it with conversations.history) and
   * only the newest `budget` events are sent. Never sends a seq twice or out of order.
   */
  private async catchUp(conn: Connection, conv: string, budget: number) {
    const st = conn.convs.get(conv);
    const feed = this.feeds.get(conv);
    if (!st || !feed || st.catching) return;
    st.catching = true;
    st.live = false;
    try {
      await feed.ready;
      for (let guard = 0; guard < 10_000; guard++) {
        if (conn.closed || conn.convs.get(conv) !== st) return;
        const head = feed.delivered;
        if (st.last >= head) {
          st.live = true;
          return;
        }
        if (head - st.last > budget) {
          const toSeq = head - budget;
          conn.send(encode({ type: 'gap', conv, fromSeq: st.last + 1, toSeq }));
          st.last = toSeq;
          continue;
        }
        const events = await this.catchUpPage(conv, st.last, Math.min(500, head - st.last));
        if (conn.closed || conn.convs.get(conv) !== st) return;
        let progressed = false;
        let stop = false;
        conn.batch(() => {
          for (const e of events) {
            if (e.seq !== st.last + 1 || e.seq > feed.delivered) break;
            if (!conn.send(e.frame)) {
              stop = true;
              return;
            }
            st.last = e.seq;
            progressed = true;
          }
        });
        if (stop) return;
        if (!progressed) {
          // The feed knows a head the store read did not return yet (a lagging replica). Retry shortly.
          await new Promise((r) => setTimeout(r, GAP_WAIT_MS));
        }
      }
    } finally {
      st.catching = false;
    }
  }

  /**
   * One store read for every socket that asks for the same page at the same time (a reconnect
   * storm: the members of a room resume from the same seq), each event encoded once for all of
   * them. Only reads in flight are shared, never a finished one. A socket that joins a read
   * started a moment before it asked may get a page that ends short of its head: the catch-up
   * loop reads on from there, so it never skips or repeats a seq.
   */
  private catchUpPage(conv: string, afterSeq: number, limit: number): Promise<{ seq: number; frame: Frame }[]> {
    const key = `${conv}|${afterSeq}|${limit}`;
    let read = this.pageReads.get(key);
    if (!read) {
      const shared: { page: Promise<{ seq: number; frame: Frame }[]>; waiters: number } = {
        waiters: 0,
        page: this.d.store.read(conv, { afterSeq, limit }).then((events) => {
          const frames = events.map((e) => ({ seq: e.seq, frame: encodeEvent(e) as Frame }));
          // Several sockets will send these: bytes once, not a string encoded again per socket.
          if (shared.waiters > 1) for (const f of frames) f.frame = frameBytes(f.frame);
          return frames;
        }),
      };
      read = shared;
      this.pageReads.set(key, read);
      const done = () => this.pageReads.delete(key);
      read.page.then(done, done);
    }
    read.waiters++;
    return read.page;
  }

  // ---- feeds and the bus -----------------------------------------------------------------

  private async ensureFeeds(convs: string[]) {
    const fresh: Feed[] = [];
    const waits: Promise<void>[] = [];
    for (const c of convs) {
      let feed = this.feeds.get(c);
      if (!feed) {
        feed = new Feed(c);
        this.feeds.set(c, feed);
        fresh.push(feed);
      } else if (feed.lingerTimer) {
        clearTimeout(feed.lingerTimer);
        feed.lingerTimer = null;
      }
      if (!feed.isReady) waits.push(feed.ready);
    }
    if (fresh.length) {
      try {
        // Subscribe first, then read the heads: every later event arrives by the bus.
        await Promise.all(fresh.map((f) => this.d.bus.subscribe(channels.conv(f.conv))));
        const heads = await this.d.store.lastSeqs(fresh.map((f) => f.conv));
        for (const f of fresh) {
          f.delivered = Math.max(f.delivered, heads.get(f.conv) ?? 0);
          f.isReady = true;
          f.markReady();
          this.drainPending(f);
        }
      } catch (err) {
        for (const f of fresh) if (this.feeds.get(f.conv) === f && !f.isReady) this.feeds.delete(f.conv);
        throw err;
      }
    }
    await Promise.all(waits);
  }

  private unsubscribe(conn: Connection, conv: string) {
    conn.convs.delete(conv);
    const feed = this.feeds.get(conv);
    if (!feed) return;
    feed.subscribers.delete(conn);
    if (feed.subscribers.size === 0 && !feed.lingerTimer) {
      feed.lingerTimer = setTimeout(() => {
        if (feed.subscribers.size > 0 || this.feeds.get(conv) !== feed) return;
        this.feeds.delete(conv);
        if (feed.gapTimer) clearTimeout(feed.gapTimer);
        void this.d.bus.unsubscribe(channels.conv(conv)).catch(() => {});
      }, FEED_LINGER_MS);
      feed.lingerTimer.unref();
    }
  }

  /**
   * An event this replica made durable: deliver here at once, and publish for the others. With
   * `senderRead` (the store moved the author's read cursor in the same commit) the author's
   * sockets get a `read` right after the event, here and on every replica.
   */
  private onAppended(e: StoredEvent, acceptedAt: number, senderRead?: number) {
    const frame = encodeEvent(e);
    const read = senderRead != null && e.from ? { user: e.from, seq: senderRead } : undefined;
    this.d.metrics.eventsPublished.inc({ kind: e.kind });
    this.arrive(e.conv, e.seq, frame, acceptedAt, read);
    this.d.notify?.appended(e);
    this.d.bus.publish(channels.conv(e.conv), busEvent(e.seq, acceptedAt, frame, read)).catch((err) => {
      // Durable already; the other replicas heal from the store (gap fill or sweep).
      this.d.logger.warn({ err: (err as Error).message }, 'bus publish failed');
    });
  }

  private onBus(channel: string, payload: Buffer) {
    if (channel.startsWith('c:')) {
      const conv = channel.slice(2);
      const m = parseBus(payload);
      if (!m) return;
      if (m.t === 'E') this.arrive(conv, m.seq, m.frame, m.acceptedAt, m.read);
      else this.fanoutFrame(conv, m.frame, m.skipUser);
    } else if (channel.startsWith('u:')) {
      this.onUserControl(channel.slice(2), payload.toString());
    } else if (channel === channels.presence) {
      this.onPresence(payload.toString());
    }
  }

  /** Takes an event into its feed in seq order, delivering every event that is now in order. */
  private arrive(conv: string, seq: number, frame: Frame, acceptedAt: number, read?: OwnRead) {
    const feed = this.feeds.get(conv);
    if (!feed || seq <= feed.delivered) return;
    if (!feed.isReady || seq !== feed.delivered + 1) {
      feed.pending.set(seq, { frame, acceptedAt, read });
      if (feed.isReady) this.scheduleGapFill(feed);
      return;
    }
    this.deliver(feed, seq, frame, acceptedAt, read);
    this.drainPending(feed);
  }

  private drainPending(feed: Feed) {
    for (const s of [...feed.pending.keys()]) if (s <= feed.delivered) feed.pending.delete(s);
    for (let next = feed.pending.get(feed.delivered + 1); next; next = feed.pending.get(feed.delivered + 1)) {
      feed.pending.delete(feed.delivered + 1);
      this.deliver(feed, feed.delivered + 1, next.frame, next.acceptedAt, next.read);
    }
    if (feed.pending.size === 0 && feed.gapTimer) {
      clearTimeout(feed.gapTimer);
      feed.gapTimer = null;
      feed.gapAttempts = 0;
    } else if (feed.pending.size > 0) this.scheduleGapFill(feed);
  }

  private deliver(feed: Feed, seq: number, frame: Frame, acceptedAt: number, read?: OwnRead) {
    feed.delivered = seq;
    this.d.metrics.deliverLatency.observe((Date.now() - acceptedAt) / 1000);
    let n = 0;
    let readFrame: string | undefined;
    if (feed.subscribers.size > 1) frame = frameBytes(frame);
    for (const conn of feed.subscribers) {
      const st = conn.convs.get(feed.conv);
      if (!st || !st.live) continue;
      if (seq !== st.last + 1) {
        if (seq > st.last) void this.catchUp(conn, feed.conv, Infinity);
        continue;
      }
      st.last = seq;
      if (this.post(conn, frame)) {
        n++;
        if (read && conn.user.id === read.user) this.post(conn, (readFrame ??= encode({ type: 'read', conv: feed.conv, user: read.user, seq: read.seq })));
      }
    }
    this.d.metrics.eventsDelivered.inc(n);
  }

  /**
   * Queues a frame for a socket until the end of this loop turn, when each socket's frames leave
   * in one write (`flushOutbox`): outside uWS's own handlers every send would be a syscall, and
   * a turn that delivers several events or presence changes to a socket makes one. Order is kept:
   * a direct `send` to a socket with posted frames queues behind them.
   */
  private post(conn: Connection, frame: Frame): boolean {
    if (conn.closed) return false;
    if (conn.queued) conn.queued.push(frame);
    else {
      conn.queued = [frame];
      if (this.outbox.push(conn) === 1) setImmediate(this.flushOutbox);
    }
    return true;
  }

  private flushOutbox = () => {
    const conns = this.outbox;
    this.outbox = [];
    for (const conn of conns) conn.flush();
  };

  /** Early events wait briefly for the seqs before them, then the hub reads those from the store. */
  private scheduleGapFill(feed: Feed) {
    if (feed.gapTimer) return;
    const wait = Math.min(GAP_WAIT_MS * 2 ** feed.gapAttempts, 2000);
    feed.gapTimer = setTimeout(() => {
      feed.gapTimer = null;
      void this.fillGap(feed);
    }, wait);
  }

  private async fillGap(feed: Feed) {
    this.d.metrics.gapFills.inc();
    const before = feed.delivered;
    try {
      // One read covers every hole up to the highest early event (or the head, from a sweep).
      const upTo = feed.pending.size ? feed.highestPending() : feed.delivered + 1000;
      const events = await this.d.store.read(feed.conv, { afterSeq: feed.delivered, limit: Math.min(1000, upTo - feed.delivered) });
      for (const e of events) this.arrive(feed.conv, e.seq, encodeEvent(e), e.ts);
    } catch (err) {
      this.d.logger.warn({ err }, 'gap fill failed');
    }
    // Back off only while no progress is made (a lagging store), never after a success.
    feed.gapAttempts = feed.delivered > before ? 0 : feed.gapAttempts + 1;
    if (feed.pending.size) this.scheduleGapFill(feed);
  }

  /** Compares every tracked feed with the store heads and fills what the bus lost. */
  async resyncAll() {
    const ready = [...this.feeds.values()].filter((f) => f.isReady && f.subscribers.size > 0);
    for (let i = 0; i < ready.length; i += 1000) {
      const chunk = ready.slice(i, i + 1000);
      try {
        const heads = await this.d.store.lastSeqs(chunk.map((f) => f.conv));
        for (const f of chunk) if ((heads.get(f.conv) ?? 0) > f.delivered && !f.gapTimer) void this.fillGap(f);
      } catch (err) {
        this.d.logger.warn({ err }, 'resync failed');
      }
    }
  }

  // ---- ephemeral frames and control ------------------------------------------------------

  /** Publishes a non-event frame to every member socket of a conversation (all replicas). */
  async publishFrame(conv: string, frame: string, skipUser = '') {
    await this.d.bus.publish(channels.conv(conv), busFrame(frame, skipUser));
  }

  private fanoutFrame(conv: string, frame: Frame, skipUser: string) {
    const feed = this.feeds.get(conv);
    if (!feed) return;
    if (feed.subscribers.size > 1) frame = frameBytes(frame);
    for (const conn of feed.subscribers) if (conn.user.id !== skipUser) this.post(conn, frame);
  }

  /** Sends a control message to every replica holding sockets of this user. */
  async controlUser(userId: string, msg: UserControl) {
    await this.d.bus.publish(channels.user(userId), JSON.stringify(msg));
  }

  private onUserControl(userId: string, payload: string) {
    const conns = this.byUser.get(userId);
    const watches = this.watching.get(userId);
    // Membership changes matter to the notification trigger whoever's sockets are here.
    // (A quoted `"k":"added"` cannot occur inside a JSON string value, where quotes are escaped.)
    const membership = payload.includes('"k":"added"') || payload.includes('"k":"removed"');
    if (!conns && !watches && !(membership && this.d.notify?.membershipChanged)) return;
    let msg: UserControl;
    try {
      msg = JSON.parse(payload) as UserControl;
    } catch {
      return;
    }
    if (msg.k === 'added' || msg.k === 'removed') this.d.notify?.membershipChanged?.(msg.conv);
    if (!conns && !watches) return;
    if (watches) for (const w of watches) w.queue.push(msg);
    if (!conns) return;
    if (msg.k === 'added') {
      // One feed setup for every socket of the user, then each socket takes the conversation.
      void this.ensureFeeds([msg.conv])
        .then(() => {
          for (const conn of conns) if (!conn.controlQueue) void this.applyControl(conn, msg, true);
        })
        .catch((err) => this.d.logger.warn({ err: (err as Error).message }, 'conversation add failed'));
    }
    for (const conn of [...conns]) {
      if (conn.controlQueue) conn.controlQueue.push(msg);
      else if (msg.k !== 'added') void this.applyControl(conn, msg, true);
    }
  }

  /** Applies one control message to one socket (`feedReady`: the feed of an `added` is set up). */
  private async applyControl(conn: Connection, msg: UserControl, feedReady: boolean) {
    if (conn.closed) return;
    switch (msg.k) {
      case 'added': {
        if (!feedReady) await this.ensureFeeds([msg.conv]);
        const feed = this.feeds.get(msg.conv);
        if (conn.closed || conn.convs.has(msg.conv) || !feed) return;
        conn.send(msg.frame);
        feed.subscribers.add(conn);
        conn.convs.set(msg.conv, { last: Math.min(msg.fromSeq, feed.delivered), live: false, catching: false });
        if (!conn.holdTimer && !conn.backlog) void this.catchUp(conn, msg.conv, Infinity);
        presenceOnJoin({ presence: this.d.presence, publishFrame: (c, f, skip) => this.publishFrame(c, f, skip) }, conn, msg.conv, msg.frame).catch((err) => this.d.logger.warn({ err: (err as Error).message }, 'presence for a new conversation failed'));
        return;
      }
      case 'removed':
        if (!conn.convs.has(msg.conv)) return;
        this.unsubscribe(conn, msg.conv);
        conn.send(msg.frame);
        return;
      case 'revoke':
        if (msg.sessions === 'all' || msg.sessions.includes(conn.user.sessionId)) conn.close('UNAUTHORIZED', 'session ended');
        return;
      case 'frame':
        conn.send(msg.frame);
        return;
      case 'limits':
        this.applyLimits(conn, msg.limits);
        conn.send(msg.frame);
        return;
    }
  }

  private maxConnectionsOf(userId: string) {
    return this.userMaxConns.get(userId) ?? this.d.limits.maxConnectionsPerUser;
  }

  /** A plan's limits on an open socket, in place (no reconnect). Over the connection limit: the newest closes. */
  private applyLimits(conn: Connection, limits: SocketLimits) {
    conn.bucket.reset(limits.ratePerS, limits.burst);
    this.userMaxConns.set(conn.user.id, limits.maxConnections);
    const set = this.byUser.get(conn.user.id);
    if (set && set.size > limits.maxConnections && [...set].pop() === conn) conn.close('RATE_LIMITED', 'too many connections for this user');
  }

  /**
   * The user's last socket closed: `offline` goes out once the grace has passed, if no socket of
   * theirs is open on any replica by then (one opened here meanwhile cancels it; one opened on
   * another replica is seen by the check).
   */
  private offlineAfterGrace(userId: string, convs: string[]) {
    const lastSeen = Date.now();
    const grace = this.d.limits.presenceGraceMs ?? 0;
    if (grace <= 0) return void this.announcePresence(userId, 'offline', convs, lastSeen);
    const prev = this.goingOffline.get(userId);
    if (prev) clearTimeout(prev);
    const timer = setTimeout(() => {
      if (this.goingOffline.get(userId) !== timer) return;
      this.goingOffline.delete(userId);
      if (this.byUser.has(userId)) return;
      void this.d.presence
        .online([userId])
        .then((online) => (online.has(userId) ? undefined : this.announcePresence(userId, 'offline', convs, lastSeen)))
        .catch((err) => this.d.logger.warn({ err: (err as Error).message }, 'presence update failed'));
    }, grace);
    timer.unref();
    this.goingOffline.set(userId, timer);
  }

  /**
   * Tells the members of the user's conversations, on every replica, that the user came or
   * went. Changes gather for PRESENCE_BATCH_MS and leave in one message on the presence channel
   * (a connect storm made one publish per user per conversation, and each replica parsed each).
   */
  private async announcePresence(userId: string, status: 'online' | 'offline', convs?: string[], lastSeen = Date.now()) {
    try {
      const list = convs ?? (await this.d.directory.conversationsOf(userId));
      if (!list.length) return;
      this.presenceBatch.push([userId, status, status === 'offline' ? lastSeen : 0, list]);
      this.presenceTimer ??= setTimeout(() => this.flushPresence(), PRESENCE_BATCH_MS);
    } catch (err) {
      this.d.logger.warn({ err: (err as Error).message }, 'presence broadcast failed');
    }
  }

  private flushPresence() {
    this.presenceTimer = null;
    const batch = this.presenceBatch;
    this.presenceBatch = [];
    if (!batch.length) return;
    this.d.bus.publish(channels.presence, JSON.stringify(batch)).catch((err) => this.d.logger.warn({ err: (err as Error).message }, 'presence broadcast failed'));
  }

  /** A batch of presence changes (from any replica): each goes to the local members of its conversations. */
  private onPresence(payload: string) {
    let batch: PresenceChange[];
    try {
      batch = JSON.parse(payload) as PresenceChange[];
    } catch {
      return;
    }
    if (!Array.isArray(batch)) return;
    for (const change of batch) {
      if (!Array.isArray(change) || typeof change[0] !== 'string' || !Array.isArray(change[3])) continue;
      const [user, status, lastSeen, convs] = change;
      let frame: Frame | undefined;
      for (const c of convs) {
        const feed = this.feeds.get(c);
        if (!feed || feed.subscribers.size === 0) continue;
        frame ??= frameBytes(encode(status === 'offline' ? { type: 'presence', user, status, lastSeen } : { type: 'presence', user, status: 'online' }));
        this.fanoutFrame(c, frame, user);
      }
    }
  }

  // ---- shutdown --------------------------------------------------------------------------

  /**
   * Graceful drain: no new sockets, finish the writes already accepted (their acks
   * go out), then ask every client to reconnect elsewhere with 1012 and a jittered delay hint.
   */
  async drain(timeoutMs: number) {
    this.draining = true;
    await Promise.race([this.writer.idle(), new Promise((r) => setTimeout(r, timeoutMs))]);
    for (const set of this.byUser.values()) {
      for (const conn of [...set]) conn.close('SERVER_RESTART', `restarting; reconnect in ${Math.floor(Math.random() * 2000)}ms`);
    }
  }

  stop() {
    clearInterval(this.sweepTimer);
    for (const t of this.goingOffline.values()) clearTimeout(t);
    if (this.presenceTimer) {
      clearTimeout(this.presenceTimer);
      this.flushPresence();
    }
    for (const f of this.feeds.values()) {
      if (f.gapTimer) clearTimeout(f.gapTimer);
      if (f.lingerTimer) clearTimeout(f.lingerTimer);
    }
  }
}

/** One presence change on the bus: user, status, lastSeen (ms; 0 when online), the user's conversations. */
type PresenceChange = [string, 'online' | 'offline', number, string[]];

/** An upgrade in flight: the user's control messages since it started watching. */
export interface UserWatch {
  userId: string;
  queue: UserControl[];
}
