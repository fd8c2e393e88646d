import { HubbubError } from './errors.ts';
import type { ClientFrame, ServerFrame } from './protocol/index.ts';

interface Request {
  frame: ClientFrame & { ref: string };
  resolve: (f: ServerFrame) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
  sent: boolean;
  /** Safe to send again after a reconnect (the hub's answer to a repeat is the same). */
  resend: boolean;
}

/**
 * Socket requests answered by a frame with their `ref` (`ok`, `pong`, `error`): each with its own
 * timeout, queued while offline (a frame that never left is safe to send later), and, when the
 * connection drops between request and answer, resent if repeating it is harmless, else failed
 * with `CONNECTION_LOST`, since the hub may or may not have applied it.
 */
export class Requests {
  private readonly open = new Map<string, Request>();
  private counter = 0;

  constructor(
    /** Writes a frame; false when the socket is not open. */
    private readonly write: (f: ClientFrame) => boolean,
    private readonly timeoutMs: number,
  ) {}

  add(frame: ClientFrame, opts: { timeoutMs?: number; live: boolean; resend?: boolean }): Promise<ServerFrame> {
    const ref = `r${++this.counter}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.open.delete(ref);
        reject(new HubbubError('TIMEOUT', `no answer to ${frame.type} in time`));
      }, opts.timeoutMs ?? this.timeoutMs);
      const r: Request = { frame: { ...frame, ref }, resolve, reject, timer, sent: false, resend: opts.resend ?? false };
      this.open.set(ref, r);
      if (opts.live) this.send(r);
    });
  }

  /** The socket is live again: sends every request not sent yet. */
  flush() {
    for (const r of this.open.values()) if (!r.sent) this.send(r);
  }

  reply(ref: string, f: ServerFrame): boolean {
    const r = this.open.get(ref);
    if (!r) return false;
    this.settle(ref, r);
    r.resolve(f);
    return true;
  }

  fail(ref: string, err: Error): boolean {
    const r = this.open.get(ref);
    if (!r) return false;
    this.settle(ref, r);
    r.reject(err);
    return true;
  }

  connectionLost() {
    for (const [ref, r] of this.open) {
      if (!r.sent) continue;
      if (r.resend) r.sent = false;
      else
        this.fail(
          ref,
          new HubbubError(
            'CONNECTION_LOST',
            `the connection dropped before the answer to ${r.frame.type}; it may or may not have been applied`,
          ),
        );
    }
  }

  failAll(err: Error) {
    for (const ref of [...this.open.keys()]) this.fail(ref, err);
  }

  private send(r: Request) {
    r.sent = this.write(r.frame);
  }

  private settle(ref: string, r: Request) {
    clearTimeout(r.timer);
    this.open.delete(ref);
  }
}
