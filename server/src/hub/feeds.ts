import { channels, type Bus } from '../bus/bus.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { MessageStore } from '../store/message-store.ts';
import { GAP_WAIT_MS } from './catch-up.ts';
import type { Connection, ConvCursor } from './connection.ts';
import { Feed } from './feed.ts';
import { now } from '../observability/send-stages.ts';
import { Outbox } from './outbox.ts';
import { encode, encodeEvent, frameBytes, type Frame, type OwnRead } from './wire.ts';

/** How long a feed with no local sockets keeps its bus subscription (reconnect storms). */
const FEED_LINGER_MS = 30_000;

/**
 * The conversations this replica delivers, one `Feed` each: subscribed on the bus while a local
 * socket follows it, events taken in seq order (early ones wait, holes are read from the store),
 * each delivered event posted to the live sockets in one write per socket per loop turn.
 */
export class Feeds {
  private feeds = new Map<string, Feed>();
  private readonly outbox: Outbox;

  constructor(
    private readonly d: {
      bus: Bus;
      store: MessageStore;
      logger: Logger;
      metrics: Pick<Metrics, 'deliverLatency' | 'eventsDelivered' | 'gapFills' | 'sendStages'>;
      /** Brings a socket that missed seqs up to the feed's head from the store (then live). */
      catchUp(conn: Connection, conv: string): void;
    },
  ) {
    this.outbox = new Outbox(() => this.d.metrics.sendStages.flushed(now()));
  }

  get(conv: string): Feed | undefined {
    return this.feeds.get(conv);
  }

  /** Whether some socket here follows the conversation. */
  followed(conv: string): boolean {
    return (this.feeds.get(conv)?.subscribers.size ?? 0) > 0;
  }

  /** Makes sure these conversations have a ready feed: subscribed on the bus, head read from the store. */
  async ensure(convs: string[]) {
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
        const heads = await this.d.store.heads(fresh.map((f) => f.conv));
        for (const f of fresh) {
          const head = heads.get(f.conv);
          f.delivered = Math.max(f.delivered, head?.seq ?? 0);
          f.epoch = head?.epoch ?? 1;
          f.restoredSeq = head?.restoredSeq;
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

  /**
   * Makes a socket follow a conversation whose feed is ready, from the feed's head unless the
   * cursor says otherwise. Returns the feed, or undefined when there is none (it went idle).
   */
  join(conn: Connection, conv: string, cursor: Partial<ConvCursor> = {}): Feed | undefined {
    const feed = this.feeds.get(conv);
    if (!feed) return undefined;
    feed.subscribers.add(conn);
    conn.convs.set(conv, { last: feed.delivered, live: false, catching: false, ...cursor });
    return feed;
  }

  /** The socket stops following the conversation; a feed nobody follows lets its subscription go after a while. */
  leave(conn: Connection, conv: string) {
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

  /** Takes an event into its feed in seq order, delivering every event that is now in order. */
  arrive(conv: string, seq: number, frame: Frame, acceptedAt: number, read?: OwnRead, reachedAt?: number) {
    const feed = this.feeds.get(conv);
    if (!feed || seq <= feed.delivered) return;
    if (!feed.isReady || seq !== feed.delivered + 1) {
      feed.pending.set(seq, { frame, acceptedAt, read, reachedAt });
      if (feed.isReady) this.scheduleGapFill(feed);
      return;
    }
    this.deliver(feed, seq, frame, acceptedAt, read, reachedAt);
    this.drainPending(feed);
  }

  /** Posts a non-event frame to every local socket of a conversation but the user's. */
  fanout(conv: string, frame: Frame, skipUser: string) {
    const feed = this.feeds.get(conv);
    if (!feed) return;
    if (feed.subscribers.size > 1) frame = frameBytes(frame);
    for (const conn of feed.subscribers) if (conn.user.id !== skipUser) this.outbox.post(conn, frame);
  }

  private drainPending(feed: Feed) {
    for (const s of [...feed.pending.keys()]) if (s <= feed.delivered) feed.pending.delete(s);
    for (let next = feed.pending.get(feed.delivered + 1); next; next = feed.pending.get(feed.delivered + 1)) {
      feed.pending.delete(feed.delivered + 1);
      this.deliver(feed, feed.delivered + 1, next.frame, next.acceptedAt, next.read, next.reachedAt);
    }
    if (feed.pending.size === 0 && feed.gapTimer) {
      clearTimeout(feed.gapTimer);
      feed.gapTimer = null;
      feed.gapAttempts = 0;
    } else if (feed.pending.size > 0) this.scheduleGapFill(feed);
  }

  private deliver(feed: Feed, seq: number, frame: Frame, acceptedAt: number, read?: OwnRead, reachedAt?: number) {
    feed.delivered = seq;
    this.d.metrics.deliverLatency.observe((Date.now() - acceptedAt) / 1000);
    let n = 0;
    let readFrame: string | undefined;
    if (feed.subscribers.size > 1) frame = frameBytes(frame);
    for (const conn of feed.subscribers) {
      const st = conn.convs.get(feed.conv);
      if (!st?.live) continue;
      if (seq !== st.last + 1) {
        if (seq > st.last) this.d.catchUp(conn, feed.conv);
        continue;
      }
      st.last = seq;
      if (this.outbox.post(conn, frame)) {
        n++;
        if (read && conn.user.id === read.user)
          this.outbox.post(conn, (readFrame ??= encode({ type: 'read', conv: feed.conv, user: read.user, seq: read.seq })));
      }
    }
    this.d.metrics.eventsDelivered.inc(n);
    if (n > 0 && reachedAt !== undefined) this.d.metrics.sendStages.posted(reachedAt, acceptedAt);
  }

  /** Early events wait briefly for the seqs before them, then the feed reads those from the store. */
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

  /** Compares every followed feed with the store heads and fills what the bus lost. */
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

  stop() {
    for (const f of this.feeds.values()) {
      if (f.gapTimer) clearTimeout(f.gapTimer);
      if (f.lingerTimer) clearTimeout(f.lingerTimer);
    }
  }
}
