import { HubbubError } from './errors.ts';
import type { AckFrame, ClientFrame, ErrorFrame } from './protocol/index.ts';
import type { Ack } from './socket-types.ts';

type SendFrame = Extract<ClientFrame, { type: 'send' }>;

interface PendingSend {
  frame: SendFrame;
  resolve: (a: Ack) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

let cidCounter = 0;
const newCid = () =>
  (globalThis.crypto?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`) +
  '-' +
  (++cidCounter).toString(36);

/**
 * Sends not acked yet, by cid. Each is written again whenever the socket is live again (same cid:
 * the hub stores a cid once and answers a repeat with the first ack), until acked, refused or
 * past its timeout.
 */
export class Outbox {
  private readonly pending = new Map<string, PendingSend>();

  constructor(
    /** Writes a frame; false when the socket is not open. */
    private readonly write: (f: SendFrame) => boolean,
    private readonly live: () => boolean,
  ) {}

  add(
    conv: string,
    body: string,
    extra: { replyTo?: number; mentions?: string[]; attachments?: string[]; cid?: string },
    timeoutMs: number,
  ): Promise<Ack> {
    const cid = extra.cid ?? newCid();
    const frame: SendFrame = { type: 'send', ref: cid.slice(0, 64), conv, cid };
    // A message of attachments alone may have no text.
    if (body || !extra.attachments?.length) frame.body = body;
    if (extra.attachments?.length) frame.attachments = extra.attachments;
    if (extra.replyTo !== undefined) frame.replyTo = extra.replyTo;
    if (extra.mentions) frame.mentions = extra.mentions;
    return new Promise((resolve, reject) => {
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              this.pending.delete(cid);
              reject(new HubbubError('TIMEOUT', 'no ack in time; retry with the same cid'));
            }, timeoutMs)
          : undefined;
      this.pending.set(cid, { frame, resolve, reject, timer });
      if (this.live()) this.write(frame);
    });
  }

  /** The socket is live again: every send not acked goes out (again). */
  flush() {
    for (const p of this.pending.values()) this.write(p.frame);
  }

  /** Settles the send the ack is for; returns its ack, or undefined when no send here waited for it. */
  ack(f: AckFrame): Ack | undefined {
    const p = this.pending.get(f.cid);
    if (!p) return undefined;
    clearTimeout(p.timer);
    this.pending.delete(f.cid);
    const ack: Ack = { conv: f.conv, cid: f.cid, seq: f.seq, id: f.id, ts: f.ts };
    p.resolve(ack);
    return ack;
  }

  /** How many sends wait for their ack. */
  get size() {
    return this.pending.size;
  }

  /** An error frame for one of these sends: true if it was one. */
  error(f: ErrorFrame & { ref: string }): boolean {
    const found = [...this.pending.entries()].find(([, v]) => v.frame.ref === f.ref);
    if (!found) return false;
    const [cid, p] = found;
    // Retryable server trouble: keep it pending and resend it (same cid) after a jittered pause.
    if (f.code === 'INTERNAL' || f.code === 'RATE_LIMITED') {
      setTimeout(
        () => {
          if (this.pending.has(cid) && this.live()) this.write(p.frame);
        },
        250 + Math.random() * 750,
      );
      return true;
    }
    clearTimeout(p.timer);
    this.pending.delete(cid);
    p.reject(new HubbubError(f.code, f.message));
    return true;
  }

  failAll(err: Error) {
    for (const p of this.pending.values()) clearTimeout(p.timer), p.reject(err);
    this.pending.clear();
  }
}
