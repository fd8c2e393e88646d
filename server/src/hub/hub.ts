import { randomUUID } from 'node:crypto';
import { channels, type Bus } from '../bus/bus.ts';
import { DomainError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { ProtocolErrorCode } from '@hubbub/client/protocol';
import type { ClientFrame } from '../protocol/frames.ts';
import type { MessageStore, StoredEvent } from '../store/message-store.ts';
import { Connection, type SocketLike } from './connection.ts';
import { presenceOnJoin } from './join-presence.ts';
import { applyControl, applyLimits, type ApplyHost } from './apply-control.ts';
import { CatchUps, GAP_WAIT_MS } from './catch-up.ts';
import { EventWriter } from './event-writer.ts';
import { Feed } from './feed.ts';
import { ConnectionRegistry } from './registry.ts';
import type { AttachmentClaims, LimitsDirectory, MembershipDirectory, SocketLogin, UserControl } from './ports.ts';
import type { Presence } from '../presence/presence.ts';
import type { KeyedBuckets } from '../limits/keyed-buckets.ts';
import { PresenceAnnouncer } from './presence-announcer.ts';
import { ResumeGate } from './resume-gate.ts';
import { UserControls, type UserWatch } from './user-control.ts';
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
  /** How long a membership change waits for every hub to confirm it (default CONFIRM_TIMEOUT_MS). */
  confirmTimeoutMs?: number;
  /** Files on messages; without it a `send` with attachments is refused. */
  attachments?: AttachmentClaims;
}

/** How long a feed with no local sockets keeps its bus subscription (reconnect storms). */
const FEED_LINGER_MS = 30_000;
/** At most this many contacts' presence is sent after `ready`. */
export const PRESENCE_SNAPSHOT_MAX = 1000;
/** Every this often, tracked feeds are compared with the store heads (heals anything the bus lost). */
const SWEEP_MS = 3000;

/**
 * The hot path of a replica: local sockets, per-conversation ordered fanout, resume, and the
 * frame handlers. It talks to the bus, the message store and narrow ports, nothing else.
 */
export class Hub {
  readonly writer: EventWriter;
  private feeds = new Map<string, Feed>();
  private readonly registry: ConnectionRegistry;
  private nextId = 1;
  /**
   * The control and presence channels (resolves once subscribed; subscribed at start, and a
   * failed attempt is retried by the next upgrade).
   */
  private userChannels: Promise<void> | null = null;
  private readonly controls: UserControls;
  private sweepTimer: NodeJS.Timeout;
  /** Connections-per-user limits of users with sockets here, when their plan sets one. */
  private resumeGate: ResumeGate;
  /** Per socket, its latest send still binding attachments: later sends wait behind it. */
  private claiming = new WeakMap<Connection, Promise<void>>();
  private readonly catchUps: CatchUps;
  /** What applying a control message to a socket may do to the hub. */
  private readonly applyHost: ApplyHost = {
    ensureFeeds: (convs) => this.ensureFeeds(convs),
    feedOf: (conv) => this.feeds.get(conv),
    unsubscribe: (conn, conv) => this.unsubscribe(conn, conv),
    catchUp: (conn, conv) => void this.catchUps.run(conn, conv, Infinity),
    joined: (conn, conv, frame) =>
      void presenceOnJoin(
        { presence: this.d.presence, publishFrame: (c, f, skip) => this.publishFrame(c, f, skip) },
        conn,
        conv,
        frame,
      ).catch((err) => this.d.logger.warn({ err: (err as Error).message }, 'presence for a new conversation failed')),
    limitConnections: (conn, max) => this.registry.limit(conn, max),
  };
  /** Sockets with frames posted this turn (see `post`). */
  private outbox: Connection[] = [];
  /** What every Connection is made with (one object for all of them). */
  private connOpts: ConstructorParameters<typeof Connection>[3];
  private readonly announcer: PresenceAnnouncer;

  constructor(private readonly d: HubDeps) {
    this.registry = new ConnectionRegistry(() => this.d.limits.maxConnectionsPerUser);
    this.resumeGate = new ResumeGate(d.resumeEvents);
    this.catchUps = new CatchUps({ store: d.store, feedOf: (conv) => this.feeds.get(conv) });
    this.connOpts = {
      maxBuffered: d.limits.maxBuffered,
      ratePerS: d.limits.ratePerS,
      burst: d.limits.burst,
      wire: d.metrics.wire,
      onClose: (reason) => d.metrics.closes.inc({ reason }),
    };
    this.writer = new EventWriter(d.store, (e, acceptedAt, senderRead) => this.onAppended(e, acceptedAt, senderRead));
    this.controls = new UserControls({
      bus: d.bus,
      host: {
        socketsOf: (userId) => this.registry.socketsOf(userId),
        apply: (conn, msg) => applyControl(this.applyHost, conn, msg),
        ensureFeeds: (convs) => this.ensureFeeds(convs),
      },
      logger: d.logger,
      membershipChanged: d.notify?.membershipChanged ? (c) => d.notify!.membershipChanged!(c) : undefined,
      confirmTimeoutMs: d.confirmTimeoutMs,
    });
    d.bus.onMessage((channel, payload) => this.onBus(channel, payload));
    // Every hub hears control messages from the start, sockets or not: a membership change is
    // confirmed by every hub that hears it, and the notification trigger needs them anyway.
    this.subscribeUserChannels().catch((err) =>
      d.logger.warn({ err: (err as Error).message }, 'control channels not subscribed yet (retried at the next upgrade)'),
    );
    d.bus.onReconnect(() => {
      d.notify?.forgetMembers?.();
      void this.resyncAll();
    });
    this.announcer = new PresenceAnnouncer({
      bus: d.bus,
      presence: d.presence,
      logger: d.logger,
      graceMs: d.limits.presenceGraceMs ?? 0,
      conversationsOf: (userId) => d.directory.conversationsOf(userId),
      hasSockets: (userId) => this.registry.has(userId),
      fanout: (conv, frame, skipUser) => {
        const feed = this.feeds.get(conv);
        if (feed && feed.subscribers.size > 0) this.fanoutFrame(conv, frame(), skipUser);
      },
    });
    this.sweepTimer = setInterval(() => void this.resyncAll(), SWEEP_MS).unref();
  }

  /** Whether the user has a socket on this replica (so is online, whatever the presence store says). */
  hasSocketsOf(userId: string) {
    return this.registry.has(userId);
  }

  get connectionCount() {
    return this.registry.count;
  }

  /** Whether a new socket for this user fits the per-user limit on this replica. */
  canAccept(userId: string) {
    return this.registry.canAccept(userId);
  }

  // ---- connection lifecycle --------------------------------------------------------------

  /**
   * Called at the upgrade once the token is verified and before the login snapshot is read:
   * queues what arrives on the user's channel for this socket, so a conversation added or
   * removed or a session revoked after the snapshot still reaches it. Hand the watch to
   * `attach`, or `unwatch` it when the upgrade fails.
   */
  async watchUser(userId: string): Promise<UserWatch> {
    const watch = this.controls.watch(userId);
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
    this.controls.unwatch(watch);
  }

  /**
   * One prefix subscription for every user's channel, and the membership and presence channels:
   * a socket's upgrade costs no SUBSCRIBE round trip (a connect storm made one per user), at the
   * price of every replica hearing every user's control messages (membership changes,
   * revocations, plan changes: rare).
   */
  private subscribeUserChannels(): Promise<void> {
    if (!this.userChannels) {
      const sub = Promise.all([this.controls.subscribe(), this.d.bus.subscribe(channels.presence)]).then(() => {});
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
    const conn = new Connection(this.nextId++, user, ws, this.connOpts, opts.resumeAnnounced === true);
    // Refused before it is registered: uWS runs the close handler inside `end()`, so a socket
    // counted first and refused after would keep its slot and the gauge.
    if (!this.canAccept(user.id)) {
      this.unwatch(watch);
      if (this.registry.draining) conn.close('SERVER_RESTART', `restarting; reconnect in ${Math.floor(Math.random() * 2000)}ms`);
      else conn.close('RATE_LIMITED', 'too many connections for this user');
      return conn;
    }
    // From here on the socket's own queue takes the control messages until setup applies them.
    conn.queueControls(watch.queue);
    this.registry.add(conn);
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
      if (limits) applyLimits(this.applyHost, conn, limits);
      if (conn.closed) return;
      const heads: Record<string, number> = {};
      for (const c of convs) {
        const feed = this.feeds.get(c)!;
        feed.subscribers.add(conn);
        const blocked = login.blocked?.[c];
        conn.convs.set(
          c,
          blocked
            ? { last: feed.delivered, live: false, catching: false, blocked }
            : { last: feed.delivered, live: false, catching: false },
        );
        heads[c] = feed.delivered;
      }
      conn.send(encode({ type: 'ready', user: login.info, session: user.sessionId, convs: heads, heartbeatMs: this.d.limits.heartbeatMs }));
      // What changed since the login snapshot, in order; later messages come straight through.
      await this.applyQueued(conn);
      if (conn.closed) return;
      // Live delivery starts at the client's first frame (normally `resume`) or after the hold.
      const hold: NodeJS.Timeout = setTimeout(
        () => {
          // Timers run before the loop reads sockets: after a busy turn (a connection storm) the
          // client's `resume` may already be waiting unread. Releasing in the check phase, after
          // this turn's reads, lets it win; releasing first would send live events past the ready
          // heads and the late resume would then resend them (a gap, then duplicates).
          setImmediate(() => {
            if (conn.holdTimer === hold) this.release(conn);
          });
        },
        conn.resumeAnnounced ? this.d.limits.announcedResumeHoldMs : this.d.limits.resumeHoldMs,
      );
      conn.holdUntil(hold);
      for (const f of conn.takeBacklog()) this.handle(conn, f);
      conn.afterPresence(async () => {
        if (conn.closed) return;
        conn.countPresence();
        // With the count, a snapshot: which contacts are online now (later changes arrive as they happen).
        const { first, online } = await this.d.presence.connected(user.id, login.contacts);
        if (!conn.closed && online.size)
          conn.batch(() => {
            for (const u of online) conn.send(encode({ type: 'presence', user: u, status: 'online' }));
          });
        await this.announcer.connected(user.id, first, convs);
      });
    } catch (err) {
      this.d.logger.error({ err, conn: conn.id }, 'socket setup failed');
      conn.stopQueueingControls();
      conn.close('SERVER_RESTART', 'setup failed, reconnect');
    }
  }

  /** Applies the control messages queued for a socket during its upgrade and setup, in order. */
  private async applyQueued(conn: Connection) {
    for (let msg = conn.nextQueuedControl(); msg && !conn.closed; msg = conn.nextQueuedControl())
      await applyControl(this.applyHost, conn, msg);
    conn.stopQueueingControls();
  }

  /** The socket closed (either side). */
  closed(conn: Connection) {
    conn.markClosed();
    if (this.registry.remove(conn)) {
      this.d.metrics.connections.dec();
      const convs = [...conn.convs.keys()];
      for (const c of convs) this.unsubscribe(conn, c);
      // Chained after the socket's `connected`, so a quick close never leaves a count behind.
      conn.afterPresence(
        async () => {
          if (conn.presenceCounted && (await this.d.presence.disconnected(conn.user.id))) this.announcer.disconnected(conn.user.id, convs);
        },
        (err) => this.d.logger.warn({ err: (err as Error).message }, 'presence update failed'),
      );
    }
  }

  /** Starts live delivery for every conversation of a socket that is still on hold. */
  private release(conn: Connection) {
    conn.endHold();
    for (const [c, st] of conn.convs) if (!st.live && !st.catching) void this.catchUps.run(conn, c, Infinity);
  }

  // ---- frames ----------------------------------------------------------------------------

  /** Handles one validated client frame. Order-sensitive parts (send) enqueue synchronously. */
  handle(conn: Connection, f: ClientFrame) {
    if (conn.keep(f)) return;
    if (conn.holdTimer && f.type !== 'resume') this.release(conn);
    // Every frame type costs its sender a token; resume also pays for the events it replays.
    if (!conn.bucket.take()) return this.refuse(conn, f.ref, 'slow down');
    // A conversation this socket does not know (or whose check is in flight): the database decides.
    if ('conv' in f && (!conn.convs.has(f.conv) || conn.checking.has(f.conv))) return this.check(conn, f);
    this.dispatch(conn, f);
  }

  /** Handles a frame whose token is paid and whose conversation, if any, is settled. */
  private dispatch(conn: Connection, f: ClientFrame) {
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
        if (!this.writable(conn, f.conv, f.ref)) return;
        void this.publishFrame(f.conv, encode({ type: 'typing', conv: f.conv, user: conn.user.id }), conn.user.id);
        return;
      case 'resume':
        return void this.onResume(conn, f);
    }
  }

  /** A refusal for going over a budget: `RATE_LIMITED`, and a socket that keeps at it is closed 4008. */
  private refuse(conn: Connection, ref: string | undefined, message: string) {
    this.error(conn, ref, 'RATE_LIMITED', message);
    if (conn.strike()) conn.close('RATE_LIMITED', 'rate limit exceeded');
  }

  private member(conn: Connection, conv: string, ref?: string) {
    if (conn.convs.has(conv)) return true;
    this.error(conn, ref, 'FORBIDDEN', 'not a member of this conversation');
    return false;
  }

  /** A member who may add to the conversation: not a direct conversation with a block. */
  private writable(conn: Connection, conv: string, ref?: string) {
    const st = conn.convs.get(conv);
    if (!st) return this.member(conn, conv, ref);
    if (!st.blocked) return true;
    this.error(
      conn,
      ref,
      'FORBIDDEN',
      st.blocked === 'mine' ? 'you blocked this user: unblock them to send' : 'you cannot message this user',
    );
    return false;
  }

  /**
   * A frame for a conversation the socket does not know: the membership set of a socket follows
   * the bus, so the database (the authority) is asked before refusing. Frames for the same
   * conversation wait behind the answer, in order; a member's socket joins the conversation.
   * Costs a query only on a miss, never on the hot path of a member's send.
   */
  private check(conn: Connection, f: Extract<ClientFrame, { conv: string }>) {
    const waiting = conn.checking.get(f.conv);
    if (waiting) return void waiting.push(f);
    const queue: ClientFrame[] = [f];
    conn.checking.set(f.conv, queue);
    this.adoptMembers(conn, [f.conv], true).then(
      () => {
        conn.checking.delete(f.conv);
        if (!conn.closed) for (const g of queue) this.dispatch(conn, g);
      },
      (err) => {
        // Not knowing is no refusal: the client retries (the SDK does on INTERNAL).
        this.d.logger.warn({ err: (err as Error).message, conn: conn.id }, 'membership check failed');
        conn.checking.delete(f.conv);
        for (const g of queue) this.error(conn, g.ref, 'INTERNAL', 'membership check failed, retry');
      },
    );
  }

  /**
   * Asks the database which of these conversations the socket's user belongs to and joins the
   * socket to them (`live`: and starts their delivery; a resume does that itself). A membership
   * message heard meanwhile may postdate the answer: asked again.
   */
  private async adoptMembers(conn: Connection, convs: string[], live: boolean) {
    for (let attempt = 0; attempt < 3; attempt++) {
      const version = conn.controlVersion;
      const access = await this.d.directory.access(conn.user.id, convs);
      if (conn.closed) return;
      if (conn.controlVersion !== version) continue;
      const joined = [...access.keys()].filter((c) => !conn.convs.has(c));
      if (!joined.length) return;
      await this.ensureFeeds(joined);
      if (conn.closed || conn.controlVersion !== version) continue;
      for (const c of joined) {
        const feed = this.feeds.get(c);
        if (!feed || conn.convs.has(c)) continue;
        feed.subscribers.add(conn);
        const blocked = access.get(c)?.blocked;
        conn.convs.set(c, { last: feed.delivered, live: false, catching: false, adopted: true, ...(blocked ? { blocked } : {}) });
        if (live && !conn.holdTimer && !conn.backlogging) void this.catchUps.run(conn, c, Infinity);
      }
      return;
    }
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
    if (!this.writable(conn, f.conv, f.ref)) return;
    if (f.body === undefined && !f.attachments) return this.error(conn, f.ref, 'BAD_REQUEST', 'a message needs a body or attachments');
    if (f.body !== undefined && f.body.length > this.d.limits.maxBodyChars) {
      return this.error(conn, f.ref, 'PAYLOAD_TOO_LARGE', `body over ${this.d.limits.maxBodyChars} characters`);
    }
    const data: Record<string, unknown> = { body: f.body ?? '' };
    if (f.replyTo !== undefined) data.replyTo = f.replyTo;
    if (f.mentions?.length) data.mentions = f.mentions;
    if (f.attachments) return this.sendWithAttachments(conn, f, data, f.attachments);
    const prior = this.claiming.get(conn);
    // Behind a send still binding its attachments: the socket's messages keep their order.
    if (prior) return void prior.then(() => this.write(conn, f, data));
    this.write(conn, f, data);
  }

  /**
   * Binds the attachments (a database round trip) before the write; the socket's later sends
   * wait behind it, so they are stored in the order they were sent.
   */
  private sendWithAttachments(conn: Connection, f: Extract<ClientFrame, { type: 'send' }>, data: Record<string, unknown>, ids: string[]) {
    const claims = this.d.attachments;
    if (!claims) return this.error(conn, f.ref, 'BAD_REQUEST', 'attachments are not enabled');
    const prior = this.claiming.get(conn) ?? Promise.resolve();
    const done: Promise<void> = prior
      .then(() => claims.claim(conn.user.id, f.conv, f.cid, ids))
      .then(
        (metas) => this.write(conn, f, { ...data, attachments: metas }),
        (err) => this.fail(conn, f.ref, err),
      )
      .finally(() => {
        if (this.claiming.get(conn) === done) this.claiming.delete(conn);
      });
    this.claiming.set(conn, done);
  }

  private write(conn: Connection, f: Extract<ClientFrame, { type: 'send' }>, data: Record<string, unknown>) {
    if (conn.closed) return;
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
        this.markRead(conn.user.id, f.conv, event.seq, 'own').catch((err) =>
          this.d.logger.warn({ err: (err as Error).message }, 'own read cursor failed'),
        );
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
    // Deleting one's own message stays possible in a blocked conversation; adding to it does not.
    if (!(f.type === 'delete' ? this.member(conn, f.conv, f.ref) : this.writable(conn, f.conv, f.ref))) return;
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
      if (f.type === 'delete') {
        await this.d.store.redact(f.conv, [f.seq]);
        const files = target.data.attachments as { id: string }[] | undefined;
        if (files?.length) await this.d.attachments?.discard(files.map((a) => a.id));
      }
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
      return this.refuse(
        conn,
        f.ref,
        admitted === 'busy' ? 'a resume is already running on this socket' : `resume budget spent, retry in ${wait} ms`,
      );
    }
    conn.endHold();
    try {
      const wanted = new Map(Object.entries(f.convs));
      const unknown = [...wanted.keys()].filter((c) => !conn.convs.has(c));
      if (unknown.length) await this.adoptMembers(conn, unknown, false);
      if (conn.closed) return;
      // Conversations the client did not name go live from the heads sent in `ready`.
      for (const [c, st] of conn.convs) if (!wanted.has(c) && !st.live && !st.catching) void this.catchUps.run(conn, c, Infinity);
      const convs: Record<string, number> = {};
      for (const [c, lastSeen] of wanted) {
        const st = conn.convs.get(c);
        if (!st) continue; // not (or no longer) a member: nothing to resume
        const feed = this.feeds.get(c)!;
        st.last = Math.min(lastSeen, feed.delivered);
        st.live = false;
        await this.catchUps.run(conn, c, this.d.limits.resumeMaxEvents);
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
        void this.d.bus
          .unsubscribe(channels.conv(conv))
          .catch((err: Error) => this.d.logger.warn({ err: err.message, conv }, 'unsubscribing an idle feed failed'));
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
    } else if (channel === channels.presence) {
      this.announcer.onMessage(payload.toString());
    } else this.controls.onBus(channel, payload);
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
      if (!st?.live) continue;
      if (seq !== st.last + 1) {
        if (seq > st.last) void this.catchUps.run(conn, feed.conv, Infinity);
        continue;
      }
      st.last = seq;
      if (this.post(conn, frame)) {
        n++;
        if (read && conn.user.id === read.user)
          this.post(conn, (readFrame ??= encode({ type: 'read', conv: feed.conv, user: read.user, seq: read.seq })));
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
    if (conn.post(frame) && this.outbox.push(conn) === 1) setImmediate(this.flushOutbox);
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
  controlUser(userId: string, msg: UserControl): Promise<void> {
    return this.controls.controlUser(userId, msg);
  }

  /**
   * Sends a membership or block change to these users' sockets on every replica; resolves once
   * every replica has applied it, so the mutation that made it answers after (read-your-writes).
   */
  controlUsers(userIds: string[], msg: UserControl): Promise<void> {
    return this.controls.controlUsers(userIds, msg);
  }

  /** Applies one control message to one socket. */
  // ---- shutdown --------------------------------------------------------------------------

  /**
   * Graceful drain: no new sockets, finish the writes already accepted (their acks
   * go out), then ask every client to reconnect elsewhere with 1012 and a jittered delay hint.
   */
  async drain(timeoutMs: number) {
    this.registry.drain();
    await Promise.race([this.writer.idle(), new Promise((r) => setTimeout(r, timeoutMs))]);
    for (const conn of this.registry.drain())
      conn.close('SERVER_RESTART', `restarting; reconnect in ${Math.floor(Math.random() * 2000)}ms`);
  }

  stop() {
    clearInterval(this.sweepTimer);
    this.announcer.stop();
    for (const f of this.feeds.values()) {
      if (f.gapTimer) clearTimeout(f.gapTimer);
      if (f.lingerTimer) clearTimeout(f.lingerTimer);
    }
  }
}

export type { UserWatch } from './user-control.ts';
