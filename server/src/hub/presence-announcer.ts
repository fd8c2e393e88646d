import { channels, type Bus } from '../bus/bus.ts';
import type { Logger } from '../observability/logger.ts';
import type { Presence } from '../presence/presence.ts';
import { parseBusJson, presenceBatch, type PresenceChange } from './bus-messages.ts';
import { encode, frameBytes, type Frame } from './wire.ts';

/** Presence changes gather this long on a replica, then leave in one bus message for all replicas. */
const PRESENCE_BATCH_MS = 50;

/**
 * Tells the members of a user's conversations, on every replica, that the user came or went:
 * online when their first socket anywhere opens, offline once their last one has closed and
 * stayed closed for the grace (`graceMs`, so a reload is never seen as leaving). Changes gather
 * for PRESENCE_BATCH_MS and leave in one message on the presence channel (a connect storm made
 * one publish per user per conversation, and each replica parsed each).
 */
export class PresenceAnnouncer {
  private batch: PresenceChange[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** Users whose last socket here closed, waiting out the grace before `offline`. */
  private goingOffline = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly d: {
      bus: Bus;
      presence: Presence;
      logger: Logger;
      graceMs: number;
      /** The user's conversations, when the caller does not know them. */
      conversationsOf(userId: string): Promise<string[]>;
      /** Whether the user has a socket on this replica. */
      hasSockets(userId: string): boolean;
      /** Sends a frame (made only when some socket here gets it) to a conversation's local sockets but the user's. */
      fanout(conv: string, frame: () => Frame, skipUser: string): void;
    },
  ) {
    d.presence.onExpired((u) => void this.announce(u, 'offline'));
  }

  /**
   * A socket of the user was counted (`first`: their first anywhere). Back within the grace of
   * their last socket here: nobody is told they left. They are still announced online when this
   * is their first socket again: a contact whose socket took its presence snapshot in the gap
   * (both reloading at once) would not know.
   */
  async connected(userId: string, first: boolean, convs: string[]) {
    const leaving = this.goingOffline.get(userId);
    if (leaving) {
      clearTimeout(leaving);
      this.goingOffline.delete(userId);
    }
    if (first) await this.announce(userId, 'online', convs);
  }

  /**
   * The user's last socket closed: `offline` goes out once the grace has passed, if no socket of
   * theirs is open on any replica by then (one opened here meanwhile cancels it; one opened on
   * another replica is seen by the check).
   */
  disconnected(userId: string, convs: string[]) {
    const lastSeen = Date.now();
    if (this.d.graceMs <= 0) return void this.announce(userId, 'offline', convs, lastSeen);
    const prev = this.goingOffline.get(userId);
    if (prev) clearTimeout(prev);
    const timer = setTimeout(() => {
      if (this.goingOffline.get(userId) !== timer) return;
      this.goingOffline.delete(userId);
      if (this.d.hasSockets(userId)) return;
      void this.d.presence
        .online([userId])
        .then((online) => (online.has(userId) ? undefined : this.announce(userId, 'offline', convs, lastSeen)))
        .catch((err) => this.d.logger.warn({ err: (err as Error).message }, 'presence update failed'));
    }, this.d.graceMs);
    timer.unref();
    this.goingOffline.set(userId, timer);
  }

  private async announce(userId: string, status: 'online' | 'offline', convs?: string[], lastSeen = Date.now()) {
    try {
      const list = convs ?? (await this.d.conversationsOf(userId));
      if (!list.length) return;
      this.batch.push([userId, status, status === 'offline' ? lastSeen : 0, list]);
      this.timer ??= setTimeout(() => this.flush(), PRESENCE_BATCH_MS);
    } catch (err) {
      this.d.logger.warn({ err: (err as Error).message }, 'presence broadcast failed');
    }
  }

  private flush() {
    this.timer = null;
    const batch = this.batch;
    this.batch = [];
    if (!batch.length) return;
    this.d.bus
      .publish(channels.presence, JSON.stringify(batch))
      .catch((err) => this.d.logger.warn({ err: (err as Error).message }, 'presence broadcast failed'));
  }

  /** A batch of presence changes (from any replica): each goes to the local members of its conversations. */
  onMessage(payload: string) {
    const batch = parseBusJson(presenceBatch, payload, this.d.logger, channels.presence);
    if (!batch) return;
    for (const [user, status, lastSeen, convs] of batch) {
      let frame: Frame | undefined;
      const make = () =>
        (frame ??= frameBytes(
          encode(status === 'offline' ? { type: 'presence', user, status, lastSeen } : { type: 'presence', user, status: 'online' }),
        ));
      for (const c of convs) this.d.fanout(c, make, user);
    }
  }

  /** Stops the timers; a batch still gathering leaves now. */
  stop() {
    for (const t of this.goingOffline.values()) clearTimeout(t);
    if (this.timer) {
      clearTimeout(this.timer);
      this.flush();
    }
  }
}
