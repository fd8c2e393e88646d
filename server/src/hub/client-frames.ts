import type { ClientFrame } from '../protocol/frames.ts';
import type { CatchUps } from './catch-up.ts';
import type { Connection } from './connection.ts';
import type { MembershipCheck } from './membership-check.ts';
import type { MessageFrames } from './message-frames.ts';
import { refuse } from './replies.ts';
import type { ResumeFrame } from './resume-frame.ts';
import { encode } from './wire.ts';

/**
 * The entry for every validated client frame: kept until `ready`, ends the resume hold, pays its
 * token, has its conversation settled (MembershipCheck), then goes to its handler.
 */
export class ClientFrames {
  constructor(
    private readonly d: {
      catchUps: CatchUps;
      membership: MembershipCheck;
      messages: MessageFrames;
      resume: ResumeFrame;
    },
  ) {}

  /** Handles one validated client frame. Order-sensitive parts (send) enqueue synchronously. */
  handle(conn: Connection, f: ClientFrame) {
    if (conn.keep(f)) return;
    if (conn.holdTimer && f.type !== 'resume') this.d.catchUps.release(conn);
    // Every frame type costs its sender a token; resume also pays for the events it replays.
    if (!conn.bucket.take()) return refuse(conn, f.ref, 'slow down');
    // A conversation this socket does not know (or whose check is in flight): the database decides.
    if ('conv' in f && (!conn.convs.has(f.conv) || conn.checking.has(f.conv))) return this.d.membership.check(conn, f, this.dispatch);
    this.dispatch(conn, f);
  }

  /** Handles a frame whose token is paid and whose conversation, if any, is settled. */
  private dispatch = (conn: Connection, f: ClientFrame) => {
    const { messages } = this.d;
    switch (f.type) {
      case 'ping':
        conn.send(encode(f.ref ? { type: 'pong', ref: f.ref } : { type: 'pong' }));
        return;
      case 'send':
        return messages.send(conn, f);
      case 'edit':
      case 'delete':
      case 'react':
        return void messages.modify(conn, f);
      case 'read':
        return void messages.read(conn, f);
      case 'typing':
        return messages.typing(conn, f);
      case 'resume':
        return void this.d.resume.handle(conn, f);
    }
  };
}
