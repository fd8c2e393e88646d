import type { Connection } from './connection.ts';
import type { Feed } from './feed.ts';
import type { SocketLimits, UserControl } from './ports.ts';

/** What applying a control message to one socket may do to the hub around it. */
export interface ApplyHost {
  ensureFeeds(convs: string[]): Promise<void>;
  feedOf(conv: string): Feed | undefined;
  unsubscribe(conn: Connection, conv: string): void;
  /** Starts bringing the socket up to the conversation's head (then live). */
  catchUp(conn: Connection, conv: string): void;
  /** Presence both ways between the socket and the members of a conversation it was added to. */
  joined(conn: Connection, conv: string, conversationFrame: string): void;
  /** The user's connection limit on this replica; over it, the newest socket closes. */
  limitConnections(conn: Connection, max: number): void;
}

/**
 * Applies one user control message (membership, block, session revocation, a frame, new
 * limits) to one of the user's sockets, in the order the user's messages arrived.
 */
export async function applyControl(h: ApplyHost, conn: Connection, msg: UserControl): Promise<void> {
  if (conn.closed) return;
  switch (msg.k) {
    case 'added': {
      await h.ensureFeeds([msg.conv]);
      const feed = h.feedOf(msg.conv);
      if (conn.closed || !feed) return;
      const known = conn.convs.get(msg.conv);
      if (known) {
        // Joined already by a membership check: the socket still gets told of it, once.
        if (known.adopted) {
          known.adopted = false;
          conn.send(msg.frame);
        }
        return;
      }
      conn.send(msg.frame);
      feed.subscribers.add(conn);
      conn.convs.set(msg.conv, { last: Math.min(msg.fromSeq, feed.delivered), live: false, catching: false });
      if (!conn.holdTimer && !conn.backlogging) h.catchUp(conn, msg.conv);
      h.joined(conn, msg.conv, msg.frame);
      return;
    }
    case 'removed':
      if (!conn.convs.has(msg.conv)) return;
      h.unsubscribe(conn, msg.conv);
      conn.send(msg.frame);
      return;
    case 'block': {
      const st = msg.conv ? conn.convs.get(msg.conv) : undefined;
      if (!st) return;
      if (msg.blockers.includes(conn.user.id)) st.blocked = 'mine';
      else if (msg.blockers.length) st.blocked = 'theirs';
      else delete st.blocked;
      return;
    }
    case 'revoke':
      if (msg.sessions === 'all' || msg.sessions.includes(conn.user.sessionId)) conn.close('UNAUTHORIZED', 'session ended');
      return;
    case 'frame':
      conn.send(msg.frame);
      return;
    case 'limits':
      applyLimits(h, conn, msg.limits);
      conn.send(msg.frame);
      return;
  }
}

/** A plan's limits on an open socket, in place (no reconnect). Over the connection limit: the newest closes. */
export function applyLimits(h: ApplyHost, conn: Connection, limits: SocketLimits) {
  conn.bucket.reset(limits.ratePerS, limits.burst);
  h.limitConnections(conn, limits.maxConnections);
}
