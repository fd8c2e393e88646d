import type { Connection } from './connection.ts';

/**
 * The sockets open on this replica, by user, with each user's connection limit (their plan's,
 * or the default). While draining it accepts no new socket.
 */
export class ConnectionRegistry {
  private byUser = new Map<string, Set<Connection>>();
  private maxConns = new Map<string, number>();
  private isDraining = false;

  constructor(private readonly defaultMax: () => number) {}

  socketsOf(userId: string): ReadonlySet<Connection> | undefined {
    return this.byUser.get(userId);
  }

  /** Every user with sockets on this replica, with them. */
  users(): Iterable<[string, ReadonlySet<Connection>]> {
    return this.byUser.entries();
  }

  /** Whether the user has a socket on this replica. */
  has(userId: string) {
    return this.byUser.has(userId);
  }

  get count() {
    let n = 0;
    for (const s of this.byUser.values()) n += s.size;
    return n;
  }

  get draining() {
    return this.isDraining;
  }

  /** Whether a new socket for this user fits the per-user limit on this replica. */
  canAccept(userId: string) {
    return !this.isDraining && (this.byUser.get(userId)?.size ?? 0) < (this.maxConns.get(userId) ?? this.defaultMax());
  }

  add(conn: Connection) {
    let set = this.byUser.get(conn.user.id);
    if (!set) this.byUser.set(conn.user.id, (set = new Set()));
    set.add(conn);
  }

  /** Forgets a socket; true the first time (a socket is counted out once). */
  remove(conn: Connection): boolean {
    const set = this.byUser.get(conn.user.id);
    if (!set?.delete(conn)) return false;
    if (set.size === 0) {
      this.byUser.delete(conn.user.id);
      this.maxConns.delete(conn.user.id);
    }
    return true;
  }

  /** A plan's connection limit for the socket's user; over it, the newest socket (this one, if newest) closes. */
  limit(conn: Connection, maxConnections: number) {
    this.maxConns.set(conn.user.id, maxConnections);
    const set = this.byUser.get(conn.user.id);
    if (set && set.size > maxConnections && [...set].pop() === conn) conn.close('RATE_LIMITED', 'too many connections for this user');
  }

  /** No new sockets from now on; returns every open one. */
  drain(): Connection[] {
    this.isDraining = true;
    return [...this.byUser.values()].flatMap((set) => [...set]);
  }
}
