// Types and constants only: frames.ts carries the zod schemas, which would triple the browser bundle.
import { CloseCodes, PROTOCOL, type EventFrame, type ServerFrame } from './protocol/index.ts';

/**
 * Hubbub's socket client for Node and browsers: connects with a token, reconnects with
 * exponential backoff and jitter, resumes every conversation from the last seq it saw, retries
 * sends with the same `cid` until acked (the server dedupes), and hands events to the app
 * exactly once, in seq order.
 */

/**
 * A handler slot that both the browser's WebSocket (DOM events, a `this` parameter) and the `ws`
 * package's (its own event classes) satisfy without a cast: declared as a method, so TypeScript
 * compares its parameter bivariantly, and the client only reads the fields named here.
 */
type Handler<E> = { bivariant(ev: E): unknown }['bivariant'] | null;

/** The WebSocket surface used (the browser's, or the `ws` package's in Node). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<object>;
  onmessage: Handler<{ data: unknown }>;
  onclose: Handler<{ code: number; reason: string }>;
  onerror: Handler<object>;
}
export type WebSocketCtor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface Ack {
  conv: string;
  cid: string;
  seq: number;
  id: string;
  ts: number;
}

export class HubbubError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type ReadyFrame = Extract<ServerFrame, { type: 'ready' }>;
type Listeners = {
  event: (e: EventFrame) => void;
  frame: (f: ServerFrame) => void;
  ready: (f: ReadyFrame) => void;
  resumed: (convs: Record<string, number>, cursors: Record<string, number>) => void;
  gap: (g: { conv: string; fromSeq: number; toSeq: number }) => void;
  close: (c: { code: number; reason: string; willReconnect: boolean }) => void;
};

export interface SocketClientOptions {
  /** ws://host:port/ws, or a function (called at every connect) that picks one. */
  url: string | (() => string);
  /** Called at every (re)connect, so a refreshed token is used. */
  token: () => string | Promise<string>;
  WebSocket?: WebSocketCtor;
  /** Backoff: first delay and cap, in ms. */
  minDelayMs?: number;
  maxDelayMs?: number;
  /**
   * Give up on a send after this long without an ack (it stays safe to retry with the same cid).
   * 0: never give up; the send stays queued across reconnects until acked or rejected.
   */
  sendTimeoutMs?: number;
  /** Last seen seqs to resume from (e.g. persisted by the app). */
  initialSeqs?: Record<string, number>;
}

interface PendingSend {
  frame: Record<string, unknown>;
  resolve: (a: Ack) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

let cidCounter = 0;
const newCid = () =>
  (globalThis.crypto?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`) + '-' + (++cidCounter).toString(36);

export class SocketClient {
  /** The last seq delivered to the app per conversation (everything before it was delivered). */
  readonly seqs = new Map<string, number>();
  private ws: WebSocketLike | null = null;
  private listeners: { [K in keyof Listeners]: Set<Listeners[K]> } = {
    event: new Set(),
    frame: new Set(),
    ready: new Set(),
    resumed: new Set(),
    gap: new Set(),
    close: new Set(),
  };
  private pending = new Map<string, PendingSend>();
  private refs = new Map<string, { resolve: (f: ServerFrame) => void; reject: (e: Error) => void }>();
  private attempt = 0;
  private stopped = false;
  private live = false;
  /** A reconnect sent `resume` as soon as the socket opened (so `ready` need not). */
  private resumeSent = false;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private lastHeard = 0;
  private refCounter = 0;
  private readonly Ctor: WebSocketCtor;

  constructor(private readonly opts: SocketClientOptions) {
    const Ctor = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    if (!Ctor) throw new Error('no WebSocket implementation: pass `WebSocket` (e.g. from the ws package)');
    this.Ctor = Ctor;
    for (const [c, s] of Object.entries(opts.initialSeqs ?? {})) this.seqs.set(c, s);
  }

  on<K extends keyof Listeners>(type: K, fn: Listeners[K]): () => void {
    this.listeners[type].add(fn);
    return () => this.listeners[type].delete(fn);
  }

  /** Connects; resolves after the first `resumed` (every conversation caught up). */
  connect(): Promise<void> {
    this.stopped = false;
    return new Promise((resolve, reject) => {
      const offR = this.on('resumed', () => (offR(), offC(), resolve()));
      const offC = this.on('close', (c) => {
        if (!c.willReconnect) (offR(), offC(), reject(new HubbubError('CLOSED', `closed ${c.code} ${c.reason}`)));
      });
      void this.open();
    });
  }

  /**
   * Sends a message; resolves with the ack. Survives reconnects: the same cid is sent again
   * until acked, and the server stores it once.
   */
  send(conv: string, body: string, extra: { replyTo?: number; mentions?: string[]; cid?: string } = {}): Promise<Ack> {
    const cid = extra.cid ?? newCid();
    const frame: Record<string, unknown> = { type: 'send', ref: cid.slice(0, 64), conv, cid, body };
    if (extra.replyTo !== undefined) frame.replyTo = extra.replyTo;
    if (extra.mentions) frame.mentions = extra.mentions;
    return new Promise((resolve, reject) => {
      const timeoutMs = this.opts.sendTimeoutMs ?? 30_000;
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              this.pending.delete(cid);
              reject(new HubbubError('TIMEOUT', 'no ack in time; retry with the same cid'));
            }, timeoutMs)
          : undefined;
      this.pending.set(cid, { frame, resolve, reject, timer });
      if (this.live) this.raw(frame);
    });
  }

  /** Sends a frame with a ref and resolves with the reply that carries it (ok, pong, …). */
  request(frame: Record<string, unknown>, timeoutMs = 10_000): Promise<ServerFrame> {
    const ref = `r${++this.refCounter}`;
    // Unlike sends, requests are not queued: an edit or reaction made offline is refused at once.
    if (!this.ws || this.ws.readyState !== 1) return Promise.reject(new HubbubError('OFFLINE', 'not connected; try again once the connection is back'));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => (this.refs.delete(ref), reject(new HubbubError('TIMEOUT', 'no reply'))), timeoutMs);
      this.refs.set(ref, {
        resolve: (f) => (clearTimeout(t), resolve(f)),
        reject: (e) => (clearTimeout(t), reject(e)),
      });
      this.raw({ ...frame, ref });
    });
  }

  /** True while the socket is open and resumed (sends go out at once). */
  get connected() {
    return this.live;
  }

  /** Edits one of your messages; resolves when the hub has stored the edit event. */
  edit(conv: string, seq: number, body: string) {
    return this.request({ type: 'edit', conv, seq, body });
  }

  /** Deletes (redacts) one of your messages. */
  delete(conv: string, seq: number) {
    return this.request({ type: 'delete', conv, seq });
  }

  /** Adds (`on`) or removes a reaction. */
  react(conv: string, seq: number, emoji: string, on: boolean) {
    return this.request({ type: 'react', conv, seq, emoji, on });
  }

  markRead(conv: string, seq: number) {
    this.raw({ type: 'read', conv, seq });
  }

  typing(conv: string) {
    this.raw({ type: 'typing', conv });
  }

  /** Closes for good (no reconnect). */
  close() {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.stopHeartbeat();
    this.ws?.close(1000, 'bye');
  }

  /** Drops the connection as a network failure would (tests, and the app's "reconnect now"). */
  drop() {
    this.ws?.close(4000, 'client drop');
  }

  private raw(frame: Record<string, unknown>) {
    if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(frame));
  }

  private async open() {
    let token: string;
    try {
      token = await this.opts.token();
    } catch {
      return this.scheduleReconnect();
    }
    if (this.stopped) return;
    const base = typeof this.opts.url === 'function' ? this.opts.url() : this.opts.url;
    // `resume=1`: this client always sends `resume`, so the hub holds live delivery until it does.
    const url = base + (base.includes('?') ? '&' : '?') + 'resume=1';
    const ws = new this.Ctor(url, [PROTOCOL, `bearer.${token}`]);
    this.ws = ws;
    this.live = false;
    this.resumeSent = false;
    ws.onopen = () => {
      if (this.ws !== ws || this.seqs.size === 0) return;
      // A reconnect: resume at once, without waiting for `ready`. The hub keeps the frame and
      // handles it right after `ready`, so live delivery never starts before the resume, however
      // busy this client or the hub is (conversations not named go live from `ready`).
      this.raw({ type: 'resume', ref: 'resume', convs: Object.fromEntries(this.seqs) });
      this.resumeSent = true;
    };
    ws.onmessage = (ev) => {
      this.lastHeard = Date.now();
      let f: ServerFrame;
      try {
        f = JSON.parse(String(ev.data)) as ServerFrame;
      } catch {
        return;
      }
      this.onFrame(f);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.live = false;
      this.stopHeartbeat();
      const noRetry = ev.code === CloseCodes.UNAUTHORIZED.code || ev.code === CloseCodes.NORMAL.code;
      const willReconnect = !this.stopped && !noRetry;
      for (const fn of this.listeners.close) fn({ code: ev.code, reason: ev.reason, willReconnect });
      if (willReconnect) this.scheduleReconnect();
    };
    ws.onerror = () => {};
  }

  private scheduleReconnect() {
    if (this.stopped) return;
    const min = this.opts.minDelayMs ?? 200;
    const max = this.opts.maxDelayMs ?? 10_000;
    // Full jitter: a fleet reconnecting after a drain does not arrive all at once.
    const delay = Math.random() * Math.min(max, min * 2 ** this.attempt++);
    this.reconnectTimer = setTimeout(() => void this.open(), delay);
  }

  private onFrame(f: ServerFrame) {
    for (const fn of this.listeners.frame) fn(f);
    switch (f.type) {
      case 'ready': {
        this.attempt = 0;
        for (const fn of this.listeners.ready) fn(f);
        // Resume every conversation we have seen; the ones we never saw go live from `ready`.
        const convs: Record<string, number> = {};
        for (const c of Object.keys(f.convs)) {
          const seen = this.seqs.get(c);
          if (seen !== undefined) convs[c] = seen;
          else this.seqs.set(c, f.convs[c]!);
        }
        if (!this.resumeSent) this.raw({ type: 'resume', ref: 'resume', convs });
        this.startHeartbeat(f.heartbeatMs);
        return;
      }
      case 'resumed':
        this.live = true;
        for (const p of this.pending.values()) this.raw(p.frame);
        for (const fn of this.listeners.resumed) fn(f.convs, f.cursors);
        return;
      case 'event': {
        const last = this.seqs.get(f.conv);
        if (last !== undefined && f.seq <= last) return; // a duplicate: already delivered
        if (last !== undefined && f.seq !== last + 1) {
          // Should not happen (the server sends in order); recover by resuming.
          this.raw({ type: 'resume', convs: { [f.conv]: last } });
          return;
        }
        this.seqs.set(f.conv, f.seq);
        for (const fn of this.listeners.event) fn(f);
        return;
      }
      case 'gap':
        this.seqs.set(f.conv, f.toSeq);
        for (const fn of this.listeners.gap) fn(f);
        return;
      case 'conversation':
        if (f.op === 'removed') this.seqs.delete(f.conversation.id);
        return;
      case 'ack': {
        const p = this.pending.get(f.cid);
        if (p) {
          clearTimeout(p.timer);
          this.pending.delete(f.cid);
          p.resolve({ conv: f.conv, cid: f.cid, seq: f.seq, id: f.id, ts: f.ts });
        }
        return;
      }
      case 'error': {
        if (!f.ref) return;
        // A resume refused for the hub's work budget (RATE_LIMITED): ask again after a jittered
        // pause; live delivery waits for it, so nothing is missed meanwhile.
        if (f.ref === 'resume' && f.code === 'RATE_LIMITED') {
          setTimeout(() => this.raw({ type: 'resume', ref: 'resume', convs: Object.fromEntries(this.seqs) }), 500 + Math.random() * 1000);
          return;
        }
        const p = [...this.pending.entries()].find(([, v]) => v.frame.ref === f.ref);
        if (p) {
          // Retryable server trouble: keep it pending and resend it (same cid) after a jittered pause.
          if (f.code === 'INTERNAL' || f.code === 'RATE_LIMITED') {
            const frame = p[1].frame;
            setTimeout(() => {
              if (this.pending.has(p[0]) && this.live) this.raw(frame);
            }, 250 + Math.random() * 750);
            return;
          }
          clearTimeout(p[1].timer);
          this.pending.delete(p[0]);
          p[1].reject(new HubbubError(f.code, f.message));
          return;
        }
        const r = this.refs.get(f.ref);
        if (r) {
          this.refs.delete(f.ref);
          r.reject(new HubbubError(f.code, f.message));
        }
        return;
      }
      default: {
        const ref = (f as { ref?: string }).ref;
        const r = ref ? this.refs.get(ref) : undefined;
        if (r && ref) {
          this.refs.delete(ref);
          r.resolve(f);
        }
      }
    }
  }

  private startHeartbeat(ms: number) {
    this.stopHeartbeat();
    this.lastHeard = Date.now();
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastHeard > ms + 10_000) {
        this.drop();
        return;
      }
      this.raw({ type: 'ping' });
    }, ms);
    (this.heartbeat as { unref?: () => void }).unref?.();
  }

  private stopHeartbeat() {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }
}
