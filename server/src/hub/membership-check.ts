import type { Logger } from '../observability/logger.ts';
import type { ClientFrame } from '../protocol/frames.ts';
import type { Connection } from './connection.ts';
import type { Feeds } from './feeds.ts';
import type { MembershipDirectory } from './ports.ts';
import { replyError } from './replies.ts';

/**
 * A frame for a conversation the socket does not know: the membership set of a socket follows
 * the bus, so the database (the authority) is asked before refusing. Frames for the same
 * conversation wait behind the answer, in order; a member's socket joins the conversation.
 * Costs a query only on a miss, never on the hot path of a member's send.
 */
export class MembershipCheck {
  constructor(
    private readonly d: {
      directory: MembershipDirectory;
      feeds: Feeds;
      logger: Logger;
      catchUp(conn: Connection, conv: string): void;
    },
  ) {}

  /** Settles the frame's conversation, then hands it (and any that queued behind it) to `dispatch`. */
  check(conn: Connection, f: Extract<ClientFrame, { conv: string }>, dispatch: (conn: Connection, f: ClientFrame) => void) {
    const waiting = conn.checking.get(f.conv);
    if (waiting) return void waiting.push(f);
    const queue: ClientFrame[] = [f];
    conn.checking.set(f.conv, queue);
    this.adopt(conn, [f.conv], true).then(
      () => {
        conn.checking.delete(f.conv);
        if (!conn.closed) for (const g of queue) dispatch(conn, g);
      },
      (err) => {
        // Not knowing is no refusal: the client retries (the SDK does on INTERNAL).
        this.d.logger.warn({ err: (err as Error).message, conn: conn.id }, 'membership check failed');
        conn.checking.delete(f.conv);
        for (const g of queue) replyError(conn, g.ref, 'INTERNAL', 'membership check failed, retry');
      },
    );
  }

  /**
   * Asks the database which of these conversations the socket's user belongs to and joins the
   * socket to them (`live`: and starts their delivery; a resume does that itself). A membership
   * message heard meanwhile may postdate the answer: asked again.
   */
  async adopt(conn: Connection, convs: string[], live: boolean) {
    for (let attempt = 0; attempt < 3; attempt++) {
      const version = conn.controlVersion;
      const access = await this.d.directory.access(conn.user.id, convs);
      if (conn.closed) return;
      if (conn.controlVersion !== version) continue;
      const joined = [...access.keys()].filter((c) => !conn.convs.has(c));
      if (!joined.length) return;
      await this.d.feeds.ensure(joined);
      if (conn.closed || conn.controlVersion !== version) continue;
      for (const c of joined) {
        if (conn.convs.has(c)) continue;
        const blocked = access.get(c)?.blocked;
        if (!this.d.feeds.join(conn, c, blocked ? { adopted: true, blocked } : { adopted: true })) continue;
        if (live && !conn.holdTimer && !conn.backlogging) this.d.catchUp(conn, c);
      }
      return;
    }
  }
}
