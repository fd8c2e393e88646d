import { randomBytes } from 'node:crypto';
import { channels, type Bus } from '../bus/bus.ts';
import type { Logger } from '../observability/logger.ts';
import { membershipMessage, parseBusJson, userControlMessage } from './bus-messages.ts';
import { Confirmations } from './confirmations.ts';
import type { Connection } from './connection.ts';
import type { UserControl } from './ports.ts';

/** How long a membership change waits for every hub to confirm it before its mutation answers anyway. */
export const CONFIRM_TIMEOUT_MS = 2000;

const MEMBERSHIP_KINDS = new Set<UserControl['k']>(['added', 'removed', 'block']);

/** What user control needs from the hub: a user's sockets here, and applying a message to one. */
export interface ControlHost {
  socketsOf(userId: string): ReadonlySet<Connection> | undefined;
  /** Applies a message to a socket whose setup is done (the feed of an `added` is set up first). */
  apply(conn: Connection, msg: UserControl): Promise<void>;
  /** Sets up the feeds of conversations (once for all of a user's sockets). */
  ensureFeeds(convs: string[]): Promise<void>;
}

/** An upgrade in flight: the user's control messages since it started watching. */
export interface UserWatch {
  userId: string;
  queue: UserControl[];
}

/**
 * Control messages to users' sockets on every hub. Membership and block changes travel on one
 * channel for all the users they concern, each applied in arrival order per user and confirmed
 * to its sender, whose mutation answers only then (`controlUsers`): a socket anywhere acts on the
 * new membership as soon as the caller has the answer. Revocations, plan limits and frames for
 * one user go on that user's channel, unconfirmed. Upgrades in flight `watch` a user: what
 * arrives meanwhile is queued and applied after the socket's login snapshot.
 */
export class UserControls {
  private watching = new Map<string, Set<UserWatch>>();
  /** Per user, the membership messages being applied here, in arrival order. */
  private chains = new Map<string, Promise<void>>();
  private readonly confirmations: Confirmations;
  readonly confirmChannel = channels.confirm(randomBytes(8).toString('hex'));

  constructor(
    private readonly d: {
      bus: Bus;
      host: ControlHost;
      logger: Logger;
      /** Told which conversations' membership (or blocks between members) changed, for what it keeps about members. */
      membershipChanged?(conv: string): void;
      confirmTimeoutMs?: number;
    },
  ) {
    this.confirmations = new Confirmations({
      bus: d.bus,
      channel: this.confirmChannel,
      timeoutMs: d.confirmTimeoutMs ?? CONFIRM_TIMEOUT_MS,
      logger: d.logger,
    });
  }

  /** The channels every hub listens on for control: every user's (one prefix subscription) and membership's. */
  subscribe(): Promise<void> {
    return Promise.all([this.d.bus.subscribePrefix(channels.user('')), this.d.bus.subscribe(channels.membership)]).then(() => {});
  }

  /** Sends a message to one user's sockets on every hub (not confirmed). */
  async controlUser(userId: string, msg: UserControl) {
    await this.d.bus.publish(channels.user(userId), JSON.stringify(msg));
  }

  /** Sends a membership or block change to these users' sockets; resolves once every hub has applied it. */
  controlUsers(userIds: string[], msg: UserControl): Promise<void> {
    return this.confirmations.publish(channels.membership, (confirm) => JSON.stringify({ users: userIds, ctl: msg, confirm }));
  }

  watch(userId: string): UserWatch {
    const watch: UserWatch = { userId, queue: [] };
    let set = this.watching.get(userId);
    if (!set) this.watching.set(userId, (set = new Set()));
    set.add(watch);
    return watch;
  }

  unwatch(watch: UserWatch) {
    const set = this.watching.get(watch.userId);
    if (set?.delete(watch) && set.size === 0) this.watching.delete(watch.userId);
  }

  /** A message on a control channel; false when the channel is none of them. */
  onBus(channel: string, payload: Buffer): boolean {
    if (channel === channels.membership) this.onMembership(payload.toString());
    else if (channel === this.confirmChannel) this.confirmations.confirmed(payload.toString());
    else if (channel.startsWith('u:')) this.onUserChannel(channel.slice(2), payload.toString());
    else return false;
    return true;
  }

  private onUserChannel(userId: string, payload: string) {
    // Heard by every hub: parsed only where the user has a socket or an upgrade.
    if (!this.d.host.socketsOf(userId) && !this.watching.has(userId)) return;
    const msg = parseBusJson(userControlMessage, payload, this.d.logger, 'user');
    if (!msg) return;
    if (MEMBERSHIP_KINDS.has(msg.k)) return void this.inOrder(userId, msg);
    this.queueOnWatches(userId, msg);
    for (const conn of this.d.host.socketsOf(userId) ?? []) {
      if (!conn.queueControl(msg))
        this.d.host
          .apply(conn, msg)
          .catch((err) => this.d.logger.warn({ err: (err as Error).message, k: msg.k }, 'control message failed'));
    }
  }

  /** Applies a membership message to the user's sockets here only, in order with the bus's (a change the bus lost). */
  applyHere(userId: string, msg: UserControl): Promise<void> {
    return this.inOrder(userId, msg);
  }

  private onMembership(payload: string) {
    const m = parseBusJson(membershipMessage, payload, this.d.logger, channels.membership);
    if (!m) return;
    const { ctl } = m;
    if (ctl.k === 'added' || ctl.k === 'removed') this.d.membershipChanged?.(ctl.conv);
    else if (ctl.k === 'block') for (const c of ctl.shared) this.d.membershipChanged?.(c);
    void Promise.all(m.users.map((u) => this.inOrder(u, ctl))).then(() => {
      if (!m.confirm) return;
      this.d.bus.publish(m.confirm.to, m.confirm.id).catch((err) => {
        // The sender answers after its timeout instead; nothing here is lost.
        this.d.logger.warn({ err: (err as Error).message }, 'membership confirmation failed');
      });
    });
  }

  /**
   * Applies a membership message to the user's sockets here after the ones before it. Sockets
   * still in setup get it on their queue (applied before any frame of theirs is handled). Each
   * socket of the user counts the message at once (`controlVersion`), so a membership check
   * already in flight knows its answer may predate it. Never rejects.
   */
  private inOrder(userId: string, msg: UserControl): Promise<void> {
    this.queueOnWatches(userId, msg);
    const conns = this.d.host.socketsOf(userId);
    if (!conns && !this.chains.has(userId)) return Promise.resolve();
    for (const conn of conns ?? []) conn.heardControl();
    const run = async () => {
      const now = this.d.host.socketsOf(userId);
      if (!now) return;
      if (msg.k === 'added') await this.d.host.ensureFeeds([msg.conv]);
      await Promise.all([...now].map((conn) => (conn.queueControl(msg) ? undefined : this.d.host.apply(conn, msg))));
    };
    const prev = this.chains.get(userId) ?? Promise.resolve();
    const next = prev.then(run).catch((err) => this.d.logger.warn({ err: (err as Error).message, k: msg.k }, 'control message failed'));
    this.chains.set(userId, next);
    void next.then(() => {
      if (this.chains.get(userId) === next) this.chains.delete(userId);
    });
    return next;
  }

  private queueOnWatches(userId: string, msg: UserControl) {
    for (const w of this.watching.get(userId) ?? []) w.queue.push(msg);
  }
}
