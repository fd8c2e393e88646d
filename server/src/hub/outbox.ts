import type { Connection } from './connection.ts';
import type { Frame } from './wire.ts';

/**
 * Frames for sockets, held until the end of this loop turn, when each socket's frames leave in
 * one write: outside uWS's own handlers every send would be a syscall, and a turn that delivers
 * several events or presence changes to a socket makes one. Order is kept: a direct `send` to a
 * socket with posted frames queues behind them (Connection.send).
 */
export class Outbox {
  /** Sockets with frames posted this turn. */
  private conns: Connection[] = [];

  /** `flushed` runs after each turn's writes (the send-stage timing of the write). */
  constructor(private readonly flushed?: () => void) {}

  /** Queues a frame for the end of this turn; false when the socket is closed. */
  post(conn: Connection, frame: Frame): boolean {
    if (conn.closed) return false;
    if (conn.post(frame) && this.conns.push(conn) === 1) setImmediate(this.flush);
    return true;
  }

  private flush = () => {
    const conns = this.conns;
    this.conns = [];
    for (const conn of conns) conn.flush();
    this.flushed?.();
  };
}
