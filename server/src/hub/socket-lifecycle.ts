import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Presence } from '../presence/presence.ts';
import type { ClientFrame } from '../protocol/frames.ts';
import { applyControl, applyLimits, type ApplyHost } from './apply-control.ts';
import type { CatchUps } from './catch-up.ts';
import { Connection, type SocketLike } from './connection.ts';
import type { Feeds } from './feeds.ts';
import type { LimitsDirectory, SocketLogin } from './ports.ts';
import type { PresenceAnnouncer } from './presence-announcer.ts';
import type { ConnectionRegistry } from './registry.ts';
import type { UserWatch } from './user-control.ts';
import { encode } from './wire.ts';

/** What a socket's life on this replica is timed and limited by (HubLimits' part of it). */
export interface SocketTimings {
  ratePerS: number;
  burst: number;
  heartbeatMs: number;
  maxBuffered: number;
  resumeHoldMs: number;
  announcedResumeHoldMs: number;
}

/**
 * A socket from open to close: admitted against the per-user limit, set up from its login
 * snapshot (feeds, the plan's limits, `ready`, the control messages heard since, the resume
 * hold, presence both ways), and counted out once when it closes.
 */
export class SocketLifecycle {
  private nextId = 1;
  /** What every Connection is made with (one object for all of them). */
  private readonly connOpts: ConstructorParameters<typeof Connection>[3];

  constructor(
    private readonly d: {
      registry: ConnectionRegistry;
      feeds: Feeds;
      catchUps: CatchUps;
      applyHost: ApplyHost;
      presence: Presence;
      announcer: PresenceAnnouncer;
      userLimits?: LimitsDirectory;
      logger: Logger;
      metrics: Pick<Metrics, 'connections' | 'closes' | 'wire'>;
      limits: SocketTimings;
      unwatch(watch: UserWatch): void;
      /** Handles a client frame (those kept before `ready` go here once it is sent). */
      handle(conn: Connection, f: ClientFrame): void;
    },
  ) {
    this.connOpts = {
      maxBuffered: d.limits.maxBuffered,
      ratePerS: d.limits.ratePerS,
      burst: d.limits.burst,
      wire: d.metrics.wire,
      onClose: (reason) => d.metrics.closes.inc({ reason }),
    };
  }

  /**
   * Registers an open socket at once (frames it sends are kept until `ready`), then tracks the
   * conversations of its login snapshot and sends `ready`.
   */
  attach(ws: SocketLike, login: SocketLogin, watch: UserWatch, opts: { resumeAnnounced?: boolean } = {}): Connection {
    const { registry } = this.d;
    const user = login.user;
    const conn = new Connection(this.nextId++, user, ws, this.connOpts, opts.resumeAnnounced === true);
    // Refused before it is registered: uWS runs the close handler inside `end()`, so a socket
    // counted first and refused after would keep its slot and the gauge.
    if (!registry.canAccept(user.id)) {
      this.d.unwatch(watch);
      if (registry.draining) conn.close('SERVER_RESTART', `restarting; reconnect in ${Math.floor(Math.random() * 2000)}ms`);
      else conn.close('RATE_LIMITED', 'too many connections for this user');
      return conn;
    }
    // From here on the socket's own queue takes the control messages until setup applies them.
    conn.queueControls(watch.queue);
    registry.add(conn);
    this.d.unwatch(watch);
    this.d.metrics.connections.inc();
    void this.setup(conn, login);
    return conn;
  }

  private async setup(conn: Connection, login: SocketLogin) {
    const { feeds, userLimits } = this.d;
    const user = conn.user;
    try {
      const convs = login.convs;
      // The user's plan, read beside the feed setup: the socket starts with its limits. A
      // `limits` message that arrives meanwhile is queued and applied after, so the newest wins.
      const fromLogin = login.subscription !== undefined && userLimits?.limitsOfSubscription;
      const [, limits] = await Promise.all([
        feeds.ensure(convs),
        fromLogin ? userLimits!.limitsOfSubscription!(login.subscription!) : userLimits?.limitsOf(user.id),
      ]);
      if (conn.closed) return;
      if (limits) applyLimits(this.d.applyHost, conn, limits);
      if (conn.closed) return;
      const heads: Record<string, number> = {};
      const epochs: Record<string, number> = {};
      for (const c of convs) {
        const blocked = login.blocked?.[c];
        const feed = feeds.join(conn, c, blocked ? { blocked } : {})!;
        heads[c] = feed.delivered;
        epochs[c] = feed.epoch;
      }
      conn.send(
        encode({ type: 'ready', user: login.info, session: user.sessionId, convs: heads, epochs, heartbeatMs: this.d.limits.heartbeatMs }),
      );
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
            if (conn.holdTimer === hold) this.d.catchUps.release(conn);
          });
        },
        conn.resumeAnnounced ? this.d.limits.announcedResumeHoldMs : this.d.limits.resumeHoldMs,
      );
      conn.holdUntil(hold);
      for (const f of conn.takeBacklog()) this.d.handle(conn, f);
      conn.afterPresence(async () => {
        if (conn.closed) return;
        conn.countPresence();
        // With the count, a snapshot: which contacts are online now (later changes arrive as they happen).
        const { first, online } = await this.d.presence.connected(user.id, login.contacts);
        if (!conn.closed && online.size)
          conn.batch(() => {
            for (const u of online) conn.send(encode({ type: 'presence', user: u, status: 'online' }));
          });
        await this.d.announcer.connected(user.id, first, convs);
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
      await applyControl(this.d.applyHost, conn, msg);
    conn.stopQueueingControls();
  }

  /** The socket closed (either side). */
  closed(conn: Connection) {
    conn.markClosed();
    if (!this.d.registry.remove(conn)) return;
    this.d.metrics.connections.dec();
    const convs = [...conn.convs.keys()];
    for (const c of convs) this.d.feeds.leave(conn, c);
    // Chained after the socket's `connected`, so a quick close never leaves a count behind.
    conn.afterPresence(
      async () => {
        if (conn.presenceCounted && (await this.d.presence.disconnected(conn.user.id))) this.d.announcer.disconnected(conn.user.id, convs);
      },
      (err) => this.d.logger.warn({ err: (err as Error).message }, 'presence update failed'),
    );
  }
}
