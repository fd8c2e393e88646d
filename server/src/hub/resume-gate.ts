import type { KeyedBuckets } from '../limits/keyed-buckets.ts';
import type { Connection } from './connection.ts';

/**
 * What a `resume` may cost (unbounded, a few hundred resumes of a long conversation would make
 * one socket send hundreds of thousands of events and stall the hub for everyone). A resume is charged, before
 * any read, the events it will replay plus one per conversation named, against its user's budget
 * on this replica; one resume runs at a time per socket. Refused: `RATE_LIMITED`, and a strike.
 */
export class ResumeGate {
  private running = new WeakSet<Connection>();

  constructor(private readonly events: KeyedBuckets | undefined) {}

  /** 'ok' (the caller must call `done`), 'busy' (one is running on this socket), 'over' (budget spent). */
  admit(conn: Connection, cost: number): 'ok' | 'busy' | 'over' {
    if (this.running.has(conn)) return 'busy';
    if (this.events && !this.events.take(conn.user.id, cost)) return 'over';
    this.running.add(conn);
    return 'ok';
  }

  done(conn: Connection) {
    this.running.delete(conn);
  }

  retryAfterMs(conn: Connection, cost: number) {
    return this.events?.retryAfterMs(conn.user.id, cost) ?? 0;
  }
}
