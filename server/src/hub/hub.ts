import { channels, type Bus } from '../bus/bus.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { now } from '../observability/send-stages.ts';
import type { ProtocolErrorCode } from '@hubbub/client/protocol';
import type { ClientFrame } from '../protocol/frames.ts';
import type { MessageStore, StoredEvent } from '../store/message-store.ts';
import type { Connection, SocketLike } from './connection.ts';
import { presenceOnJoin } from './join-presence.ts';
import { applyControl, type ApplyHost } from './apply-control.ts';
import { CatchUps } from './catch-up.ts';
import { ClientFrames } from './client-frames.ts';
import { EventWriter } from './event-writer.ts';
import { Feeds } from './feeds.ts';
import { MembershipCheck } from './membership-check.ts';
import { MessageFrames } from './message-frames.ts';
import { ConnectionRegistry } from './registry.ts';
import type { AttachmentClaims, LimitsDirectory, MembershipDirectory, SocketLogin, UserControl } from './ports.ts';
import type { Presence } from '../presence/presence.ts';
import type { KeyedBuckets } from '../limits/keyed-buckets.ts';
import { PresenceAnnouncer } from './presence-announcer.ts';
import { replyError } from './replies.ts';
import { ResumeFrame } from './resume-frame.ts';
import { ResumeGate } from './resume-gate.ts';
import { revalidateSockets } from './revalidate.ts';
import { SocketLifecycle } from './socket-lifecycle.ts';
import { UserControls, type UserWatch } from './user-control.ts';
import { busEvent, busFrame, encodeEvent, parseBus } from './wire.ts';

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

/** At most this many contacts' presence is sent after `ready`. */
export const PRESENCE_SNAPSHOT_MAX = 1000;
/** Every this often, tracked feeds are compared with the store heads (heals anything the bus lost). */
const SWEEP_MS = 3000;

/**
 * The hot path of a replica, as a coordinator of the parts that each do one job: sockets from
 * open to close (SocketLifecycle), client frames (ClientFrames and its handlers), ordered
 * per-conversation delivery (Feeds), catch-up reads (CatchUps), user control messages
 * (UserControls) and presence announcements (PresenceAnnouncer). It routes the bus to them and
 * is what the socket handler and the services call. It talks to the bus, the message store and
 * narrow ports, nothing else.
 */
export class Hub {
  readonly writer: EventWriter;
  private readonly registry: ConnectionRegistry;
  private readonly feeds: Feeds;
  private readonly catchUps: CatchUps;
  private readonly controls: UserControls;
  private readonly announcer: PresenceAnnouncer;
  private readonly frames: ClientFrames;
  private readonly sockets: SocketLifecycle;
  /**
   * The control and presence channels (resolves once subscribed; subscribed at start, and a
   * failed attempt is retried by the next upgrade).
   */
  private userChannels: Promise<void> | null = null;
  private readonly sweepTimer: NodeJS.Timeout;

  constructor(private readonly d: HubDeps) {
    const { store, bus, logger, metrics, limits } = d;
    this.registry = new ConnectionRegistry(() => limits.maxConnectionsPerUser);
    const catchUp = (conn: Connection, conv: string) => void this.catchUps.run(conn, conv, Infinity);
    this.feeds = new Feeds({ bus, store, logger, metrics, catchUp });
    this.catchUps = new CatchUps({ store, feedOf: (conv) => this.feeds.get(conv) });
    this.writer = new EventWriter(store, (e, acceptedAt, senderRead) => this.onAppended(e, acceptedAt, senderRead), {
      onWrite: (drafts) => metrics.appendWriteDrafts.observe(drafts),
    });

    /** What applying a control message to a socket may do to the hub. */
    const applyHost: ApplyHost = {
      ensureFeeds: (convs) => this.feeds.ensure(convs),
      feedOf: (conv) => this.feeds.get(conv),
      unsubscribe: (conn, conv) => this.feeds.leave(conn, conv),
      catchUp,
      joined: (conn, conv, frame) =>
        void presenceOnJoin({ presence: d.presence, publishFrame: (c, f, skip) => this.publishFrame(c, f, skip) }, conn, conv, frame).catch(
          (err) => logger.warn({ err: (err as Error).message }, 'presence for a new conversation failed'),
        ),
      limitConnections: (conn, max) => this.registry.limit(conn, max),
    };
    this.controls = new UserControls({
      bus,
      host: {
        socketsOf: (userId) => this.registry.socketsOf(userId),
        apply: (conn, msg) => applyControl(applyHost, conn, msg),
        ensureFeeds: (convs) => this.feeds.ensure(convs),
      },
      logger,
      membershipChanged: d.notify?.membershipChanged ? (c) => d.notify!.membershipChanged!(c) : undefined,
      confirmTimeoutMs: d.confirmTimeoutMs,
    });
    this.announcer = new PresenceAnnouncer({
      bus,
      presence: d.presence,
      logger,
      graceMs: limits.presenceGraceMs ?? 0,
      conversationsOf: (userId) => d.directory.conversationsOf(userId),
      hasSockets: (userId) => this.registry.has(userId),
      fanout: (conv, frame, skipUser) => {
        if (this.feeds.followed(conv)) this.feeds.fanout(conv, frame(), skipUser);
      },
    });

    const membership = new MembershipCheck({ directory: d.directory, feeds: this.feeds, logger, catchUp });
    this.frames = new ClientFrames({
      catchUps: this.catchUps,
      membership,
      messages: new MessageFrames({
        store,
        writer: this.writer,
        directory: d.directory,
        logger,
        maxBodyChars: limits.maxBodyChars,
        deliveredHead: (conv) => this.feeds.get(conv)?.delivered,
        publishFrame: (conv, frame, skipUser) => this.publishFrame(conv, frame, skipUser),
        controlUser: (userId, msg) => this.controlUser(userId, msg),
        attachments: d.attachments,
      }),
      resume: new ResumeFrame({
        feeds: this.feeds,
        catchUps: this.catchUps,
        gate: new ResumeGate(d.resumeEvents),
        membership,
        directory: d.directory,
        logger,
        resumeMaxEvents: limits.resumeMaxEvents,
      }),
    });
    this.sockets = new SocketLifecycle({
      registry: this.registry,
      feeds: this.feeds,
      catchUps: this.catchUps,
      applyHost,
      presence: d.presence,
      announcer: this.announcer,
      userLimits: d.userLimits,
      logger,
      metrics,
      limits,
      unwatch: (watch) => this.unwatch(watch),
      handle: (conn, f) => this.frames.handle(conn, f),
    });

    bus.onMessage((channel, payload) => this.onBus(channel, payload));
    // Every hub hears control messages from the start, sockets or not: a membership change is
    // confirmed by every hub that hears it, and the notification trigger needs them anyway.
    this.subscribeUserChannels().catch((err) =>
      logger.warn({ err: (err as Error).message }, 'control channels not subscribed yet (retried at the next upgrade)'),
    );
    bus.onReconnect(() => {
      d.notify?.forgetMembers?.();
      void this.feeds.resyncAll();
      void revalidateSockets({
        directory: d.directory,
        logger,
        host: { users: () => this.registry.users(), applyHere: (userId, msg) => this.controls.applyHere(userId, msg) },
      });
    });
    this.sweepTimer = setInterval(() => void this.feeds.resyncAll(), SWEEP_MS).unref();
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

  // ---- sockets: the socket handler calls these ------------------------------------------

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

  /** An open socket: registered at once, then set up from its login snapshot (SocketLifecycle). */
  attach(ws: SocketLike, login: SocketLogin, watch: UserWatch, opts: { resumeAnnounced?: boolean } = {}): Connection {
    return this.sockets.attach(ws, login, watch, opts);
  }

  /** The socket closed (either side); idempotent. */
  closed(conn: Connection) {
    this.sockets.closed(conn);
  }

  /** Handles one validated client frame. */
  handle(conn: Connection, f: ClientFrame) {
    this.frames.handle(conn, f);
  }

  /** An `error` frame to a socket (a frame the socket handler refused before the hub saw it). */
  error(conn: Connection, ref: string | undefined, code: ProtocolErrorCode, message: string) {
    replyError(conn, ref, code, message);
  }

  // ---- the bus ----------------------------------------------------------------------------

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
        // The caller (an upgrade, or the constructor) gets this error; the next upgrade tries again.
        if (this.userChannels === sub) this.userChannels = null;
      });
    }
    return this.userChannels;
  }

  /**
   * An event this replica made durable: deliver here at once, and publish for the others. With
   * `senderRead` (the store moved the author's read cursor in the same commit) the author's
   * sockets get a `read` right after the event, here and on every replica.
   */
  private onAppended(e: StoredEvent, acceptedAt: number, senderRead?: number) {
    const committedAt = now();
    this.d.metrics.sendStages.committed(acceptedAt, committedAt);
    const frame = encodeEvent(e);
    const read = senderRead != null && e.from ? { user: e.from, seq: senderRead } : undefined;
    this.d.metrics.eventsPublished.inc({ kind: e.kind });
    this.feeds.arrive(e.conv, e.seq, frame, acceptedAt, read, committedAt);
    this.d.notify?.appended(e);
    const publishedAt = now();
    this.d.metrics.sendStages.published(committedAt, publishedAt);
    this.d.bus.publish(channels.conv(e.conv), busEvent(e.seq, acceptedAt, frame, read, publishedAt)).catch((err) => {
      // Durable already; the other replicas heal from the store (gap fill or sweep).
      this.d.logger.warn({ err: (err as Error).message }, 'bus publish failed');
    });
  }

  private onBus(channel: string, payload: Buffer) {
    if (channel.startsWith('c:')) {
      const conv = channel.slice(2);
      const m = parseBus(payload);
      if (!m) return;
      if (m.t === 'E') {
        const heardAt = now();
        if (m.publishedAt !== undefined) this.d.metrics.sendStages.heard(m.publishedAt, heardAt);
        this.feeds.arrive(conv, m.seq, m.frame, m.acceptedAt, m.read, heardAt);
      } else this.feeds.fanout(conv, m.frame, m.skipUser);
    } else if (channel === channels.presence) {
      this.announcer.onMessage(payload.toString());
    } else this.controls.onBus(channel, payload);
  }

  /** Publishes a non-event frame to every member socket of a conversation (all replicas). */
  async publishFrame(conv: string, frame: string, skipUser = '') {
    await this.d.bus.publish(channels.conv(conv), busFrame(frame, skipUser));
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
    this.feeds.stop();
  }
}

export type { UserWatch } from './user-control.ts';
