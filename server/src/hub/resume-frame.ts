import type { RewoundFrame } from '@hubbub/client/protocol';
import type { ClientFrame } from '../protocol/frames.ts';
import type { Logger } from '../observability/logger.ts';
import type { CatchUps } from './catch-up.ts';
import type { Connection } from './connection.ts';
import type { Feeds } from './feeds.ts';
import type { MembershipCheck } from './membership-check.ts';
import type { MembershipDirectory } from './ports.ts';
import { refuse, replyFailure } from './replies.ts';
import type { ResumeGate } from './resume-gate.ts';
import { encode } from './wire.ts';

/**
 * `resume`: the client names the seq it last saw per conversation; each is caught up from the
 * store (at most `resumeMaxEvents`, older ones announced as a `gap`), then goes live, and
 * `resumed` answers with the heads, their epochs and the user's read cursors. Costs a budget of
 * events. A position claimed in another epoch than the log's is void (the log was rewound and
 * its seqs after the recovery point were issued again): it is answered with `rewound` and the
 * conversation is replayed from seq 0 of the current epoch, never from the claimed seq.
 */
export class ResumeFrame {
  constructor(
    private readonly d: {
      feeds: Feeds;
      catchUps: CatchUps;
      gate: ResumeGate;
      membership: MembershipCheck;
      directory: MembershipDirectory;
      logger: Logger;
      resumeMaxEvents: number;
    },
  ) {}

  async handle(conn: Connection, f: Extract<ClientFrame, { type: 'resume' }>) {
    const { feeds, catchUps, gate } = this.d;
    // The cost, before any read: one per conversation named, plus the events it will replay.
    let cost = 0;
    for (const [c, lastSeen] of Object.entries(f.convs)) {
      const feed = conn.convs.has(c) ? feeds.get(c) : undefined;
      const from = feed && voidPosition(f.epochs?.[c], feed.epoch) ? 0 : lastSeen;
      cost += 1 + Math.min(Math.max(0, (feed?.delivered ?? 0) - from), this.d.resumeMaxEvents);
    }
    const admitted = gate.admit(conn, cost);
    if (admitted !== 'ok') {
      const wait = gate.retryAfterMs(conn, cost);
      return refuse(
        conn,
        f.ref,
        admitted === 'busy' ? 'a resume is already running on this socket' : `resume budget spent, retry in ${wait} ms`,
      );
    }
    conn.endHold();
    try {
      const wanted = new Map(Object.entries(f.convs));
      const unknown = [...wanted.keys()].filter((c) => !conn.convs.has(c));
      if (unknown.length) await this.d.membership.adopt(conn, unknown, false);
      if (conn.closed) return;
      // Conversations the client did not name go live from the heads sent in `ready`.
      for (const [c, st] of conn.convs) if (!wanted.has(c) && !st.live && !st.catching) void catchUps.run(conn, c, Infinity);
      const convs: Record<string, number> = {};
      const epochs: Record<string, number> = {};
      for (const [c, lastSeen] of wanted) {
        const st = conn.convs.get(c);
        if (!st) continue; // not (or no longer) a member: nothing to resume
        const feed = feeds.get(c)!;
        if (voidPosition(f.epochs?.[c], feed.epoch)) {
          const rewound: RewoundFrame = { type: 'rewound', conv: c, epoch: feed.epoch, seq: feed.delivered };
          if (f.ref) rewound.ref = f.ref;
          if (feed.restoredSeq !== undefined) rewound.restoredSeq = feed.restoredSeq;
          conn.send(encode(rewound));
          st.last = 0;
        } else st.last = Math.min(lastSeen, feed.delivered);
        st.live = false;
        await catchUps.run(conn, c, this.d.resumeMaxEvents);
        if (conn.closed) return;
        convs[c] = conn.convs.get(c)?.last ?? st.last;
        epochs[c] = feed.epoch;
      }
      const cursors = await this.d.directory.readCursors(conn.user.id, Object.keys(convs));
      conn.send(encode(f.ref ? { type: 'resumed', ref: f.ref, convs, epochs, cursors } : { type: 'resumed', convs, epochs, cursors }));
    } catch (err) {
      replyFailure(this.d.logger, conn, f.ref, err);
    } finally {
      gate.done(conn);
    }
  }
}

/**
 * A claimed epoch other than the log's makes the position void. Older is a restore since; newer
 * is a position from a timeline a later restore discarded (restored again from an older backup).
 * No claim: a client that does not track epochs, served as it asks.
 */
function voidPosition(claimed: number | undefined, epoch: number): boolean {
  return claimed !== undefined && claimed !== epoch;
}
