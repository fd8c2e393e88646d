import type { ProtocolErrorCode } from '@hubbub/client/protocol';
import { DomainError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { Connection } from './connection.ts';
import { encode } from './wire.ts';

/** Replies to client frames that refuse or fail them, and the membership guards the handlers share. */

/** An `error` frame answering the frame with this ref. */
export function replyError(conn: Connection, ref: string | undefined, code: ProtocolErrorCode, message: string) {
  conn.send(encode(ref ? { type: 'error', ref, code, message } : { type: 'error', code, message }));
}

/** A failed frame: a domain error keeps its code; anything else is logged and answered INTERNAL (the client retries). */
export function replyFailure(logger: Logger, conn: Connection, ref: string | undefined, err: unknown) {
  if (err instanceof DomainError) return replyError(conn, ref, err.code, err.message);
  logger.error({ err, conn: conn.id }, 'frame failed');
  replyError(conn, ref, 'INTERNAL', 'internal error, retry');
}

/** A refusal for going over a budget: `RATE_LIMITED`, and a socket that keeps at it is closed 4008. */
export function refuse(conn: Connection, ref: string | undefined, message: string) {
  replyError(conn, ref, 'RATE_LIMITED', message);
  if (conn.strike()) conn.close('RATE_LIMITED', 'rate limit exceeded');
}

/** Whether the socket is in the conversation; refuses the frame when not. */
export function isMember(conn: Connection, conv: string, ref?: string): boolean {
  if (conn.convs.has(conv)) return true;
  replyError(conn, ref, 'FORBIDDEN', 'not a member of this conversation');
  return false;
}

/** A member who may add to the conversation: not a direct conversation with a block. */
export function isWritable(conn: Connection, conv: string, ref?: string): boolean {
  const st = conn.convs.get(conv);
  if (!st) return isMember(conn, conv, ref);
  if (!st.blocked) return true;
  replyError(
    conn,
    ref,
    'FORBIDDEN',
    st.blocked === 'mine' ? 'you blocked this user: unblock them to send' : 'you cannot message this user',
  );
  return false;
}
