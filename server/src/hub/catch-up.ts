import type { MessageStore } from '../store/message-store.ts';
import type { Connection } from './connection.ts';
import type { Feed } from './feed.ts';
import { encode, encodeEvent, frameBytes, type Frame } from './wire.ts';

/** How long an early event waits for the seqs before it (and a catch-up for a head the store has not returned yet) before reading again. */
export const GAP_WAIT_MS = 40;

/**
 * Catch-up reads: brings a socket from the seq it last saw up to its feed's head from the
 * message store, then makes it live, sharing the reads that several sockets ask for at once.
 */
export class CatchUps {
  /** Reads in flight, shared by the sockets that ask for the same page, and how many asked. */
  private pageReads = new Map<string, { page: Promise<{ seq: number; frame: Frame }[]>; waiters: number }>();

  constructor(private readonly d: { store: MessageStore; feedOf: (conv: string) => Feed | undefined }) {}

  /** Ends a socket's hold: every conversation of it not live yet catches up, then goes live. */
  release(conn: Connection) {
    conn.endHold();
    for (const [c, st] of conn.convs) if (!st.live && !st.catching) void this.run(conn, c, Infinity);
  }

  /**
   * Brings one socket up to the feed's head from the store, then makes it live. With a budget,
   * a longer backlog is announced as `gap` (the client pages it with conversations.history) and
   * only the newest `budget` events are sent. Never sends a seq twice or out of order.
   */
  async run(conn: Connection, conv: string, budget: number) {
    const st = conn.convs.get(conv);
    const feed = this.d.feedOf(conv);
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
        const events = await this.page(conv, st.last, Math.min(500, head - st.last));
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
  private page(conv: string, afterSeq: number, limit: number): Promise<{ seq: number; frame: Frame }[]> {
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
}
