import WebSocket from 'ws';
import type { ServerFrame } from '../../server/src/protocol/frames.ts';

export type Frame = ServerFrame & Record<string, any>;

/**
 * A raw protocol client for tests: every frame received is kept, and `next` awaits the first
 * unseen frame that matches (no sleeps: tests wait on the frames themselves).
 */
export class RawClient {
  readonly frames: Frame[] = [];
  private cursor = 0;
  private waiters: { pred: (f: Frame) => boolean; resolve: (f: Frame) => void; from: number }[] = [];
  closed: Promise<{ code: number; reason: string }>;
  isClosed = false;
  /** The close code and reason, once closed. */
  closedWith = '';

  constructor(readonly ws: WebSocket) {
    // A socket error (a frame that is not WebSocket framing, a reset) comes before its 1006 close.
    ws.on('error', (err) => (this.closedWith ||= `error: ${err.message};`));
    ws.on('message', (data) => {
      const f = JSON.parse(String(data)) as Frame;
      this.frames.push(f);
      const idx = this.frames.length - 1;
      for (const w of [...this.waiters]) {
        if (idx >= w.from && w.pred(f)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(f);
        }
      }
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        this.isClosed = true;
        this.closedWith = `${this.closedWith}${code} ${String(reason)}`;
        resolve({ code, reason: String(reason) });
      }),
    );
  }

  send(frame: unknown) {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The first frame (from the start) matching `pred`, waiting if needed. */
  wait(pred: (f: Frame) => boolean, timeoutMs = 10_000, from = 0): Promise<Frame> {
    for (let i = from; i < this.frames.length; i++) if (pred(this.frames[i]!)) return Promise.resolve(this.frames[i]!);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (f: Frame) => (clearTimeout(t), resolve(f)), from };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        const closed = this.closedWith ? ` (the socket closed: ${this.closedWith})` : '';
        reject(new Error(`timed out waiting for a frame; last frames: ${JSON.stringify(this.frames.slice(-5))}${closed}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** The next frame after the ones already consumed by `next` that matches. */
  async next(pred: (f: Frame) => boolean = () => true, timeoutMs = 10_000): Promise<Frame> {
    const f = await this.wait(pred, timeoutMs, this.cursor);
    this.cursor = this.frames.indexOf(f, this.cursor) + 1;
    return f;
  }

  /** Sends a frame with a fresh ref and awaits the reply carrying it. */
  async request(frame: Record<string, unknown>, timeoutMs = 10_000): Promise<Frame> {
    const ref = 'r' + Math.random().toString(36).slice(2, 10);
    this.send({ ...frame, ref });
    return this.wait((f) => (f as { ref?: string }).ref === ref, timeoutMs);
  }

  events(conv: string): Frame[] {
    return this.frames.filter((f) => f.type === 'event' && f.conv === conv);
  }

  close() {
    this.ws.close();
  }
}

export interface ConnectOptions {
  via?: 'header' | 'subprotocol';
  origin?: string;
  /** Send a `resume` with these cursors right after `ready` (default: an empty resume, go live). */
  resume?: Record<string, number> | false;
}

/** Opens an authenticated socket and waits for `ready`. */
export async function connect(
  port: number,
  token: string,
  opts: ConnectOptions = {},
): Promise<{ c: RawClient; ready: Frame; headers: Record<string, string | string[] | undefined> }> {
  const url = `ws://127.0.0.1:${port}/ws`;
  const ws =
    opts.via === 'subprotocol'
      ? new WebSocket(url, ['hubbub.v1', `bearer.${token}`], { origin: opts.origin })
      : new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, origin: opts.origin });
  const c = new RawClient(ws);
  // The 101 response's headers (a load balancer may say which server answered).
  let headers: Record<string, string | string[] | undefined> = {};
  ws.once('upgrade', (res) => (headers = res.headers));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
  const ready = await c.next((f) => f.type === 'ready');
  if (opts.resume !== false) {
    c.send({ type: 'resume', ref: 'initial', convs: opts.resume ?? {} });
    await c.wait((f) => f.type === 'resumed' && f.ref === 'initial');
  }
  return { c, ready, headers };
}

/** The HTTP status a failed upgrade got. */
export function upgradeStatus(port: number, headers: Record<string, string>, protocols?: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, protocols, { headers });
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('open', () => (ws.close(), resolve(101)));
    ws.once('error', (e) => (e.message.includes('Unexpected server response') ? undefined : reject(e)));
  });
}
