import type { Logger } from '../observability/logger.ts';
import type { Connection } from './connection.ts';
import type { MembershipDirectory, UserControl } from './ports.ts';
import { encode } from './wire.ts';

/** Users whose sockets are read again at once after a bus reconnect (one access query each). */
const CONCURRENCY = 8;

export interface RevalidateHost {
  /** Every user with sockets here, with them. */
  users(): Iterable<[string, ReadonlySet<Connection>]>;
  /** Applies a control message to the user's sockets here, in order with the ones the bus brings. */
  applyHere(userId: string, msg: UserControl): Promise<void>;
}

/**
 * What a socket may do follows membership and block messages on the bus, and the ones published
 * while this hub's bus connection was away are lost. After a reconnect every open socket's
 * conversations and direct blocks are read again from the database (the authority): a
 * conversation the user left or was removed from meanwhile is removed from the socket as its
 * `removed` message would have, a block or unblock takes effect, and a socket whose session was
 * revoked meanwhile closes. A conversation added
 * meanwhile needs nothing: the membership check adopts it at the socket's first frame for it.
 */
export async function revalidateSockets(d: { directory: MembershipDirectory; logger: Logger; host: RevalidateHost }) {
  const users = [...d.host.users()];
  let next = 0;
  const worker = async () => {
    while (next < users.length) {
      const [userId, conns] = users[next++]!;
      try {
        await revalidateUser(d, userId, conns);
      } catch (err) {
        // The socket keeps what it knew; the sweep after the next reconnect reads it again.
        d.logger.warn({ err: (err as Error).message, user: userId }, 'sockets not revalidated after the bus reconnected');
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  d.logger.info({ users: users.length }, 'sockets revalidated after the bus reconnected');
}

async function revalidateUser(d: { directory: MembershipDirectory; host: RevalidateHost }, userId: string, conns: ReadonlySet<Connection>) {
  // A membership message heard while the database was read is newer than the read: read again.
  for (let attempt = 0; attempt < 3; attempt++) {
    const known = new Set<string>();
    for (const conn of conns) for (const conv of conn.convs.keys()) known.add(conv);
    const versions = [...conns].map((c) => [c, c.controlVersion] as const);
    const [access, live] = await Promise.all([
      d.directory.access(userId, [...known]),
      d.directory.liveSessions(userId, [...new Set([...conns].map((c) => c.user.sessionId))]),
    ]);
    for (const conn of conns) if (!live.has(conn.user.sessionId)) conn.close('UNAUTHORIZED', 'session ended');
    if (versions.some(([c, v]) => c.controlVersion !== v)) continue;
    for (const [conn] of versions)
      for (const [conv, st] of conn.convs) {
        const a = access.get(conv);
        if (!a) continue;
        if (a.blocked) st.blocked = a.blocked;
        else delete st.blocked;
      }
    const gone = [...known].filter((conv) => !access.has(conv));
    const frames = await Promise.all(
      gone.map(async (conv) => ({
        conv,
        frame: encode({ type: 'conversation', op: 'removed', conversation: await d.directory.summary(conv) }),
      })),
    );
    for (const { conv, frame } of frames) await d.host.applyHere(userId, { k: 'removed', conv, frame });
    return;
  }
}
