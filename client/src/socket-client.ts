// Over 400 lines on purpose: the socket's state machine (connect, resume, epochs, outbox, timeouts)
// is one class whose parts share its state; its helpers (outbox, acked sends, emitter) are apart.
import { AckedSends } from './acked-sends.ts';
import { Emitter } from './emitter.ts';
import { HubbubError } from './errors.ts';
import { CloseCodes, PROTOCOL, type ClientFrame, type FrameOf, type OkFrame, type ServerFrame } from './protocol/index.ts';
import { Outbox } from './outbox.ts';
import { Requests } from './requests.ts';
import type { Ack, ConnectionState, SocketClientOptions, SocketEvents } from './socket-types.ts';
import { tokenExpired } from './token.ts';
import { defaultWebSocket, type WebSocketCtor, type WebSocketLike } from './websocket.ts';

/**
 * Hubbub's socket client for Node and browsers: connects with a token from `getToken`,
 * reconnects with exponential backoff and full jitter, resumes every conversation from the last
 * seq it saw, retries sends with the same `cid` until acked (the hub stores each cid once), and
 * hands events to the app exactly once, in seq order, as typed events.
 */

/** Close codes after which the client does not reconnect by itself. */
const final = new Set<number>([CloseCodes.NORMAL.code]);

export class SocketClient extends Emitter<SocketEvents> {
  /** The last seq delivered to the app per conversation (everything before it was delivered). */
  readonly seqs = new Map<string, number>();
  /** The log epoch each of those seqs belongs to (a seq means something only within its epoch). */
  readonly epochs = new Map<string, number>();
  /** Presence of the users the hub told this socket about (contacts), by user id. */
  readonly presence = new Map<string, { status: 'online' | 'offline'; lastSeen?: number }>();
  /** Read cursors by conversation, then user: yours from `resumed`, everyone's from `read` frames. */
  readonly cursors = new Map<string, Map<string, number>>();
  private ws: WebSocketLike | null = null;
  private readonly outbox: Outbox;
  private readonly requests: Requests;
  /** Recent acks with their epochs: what a restore lost, reported with `rewound`. */
  private readonly acked = new AckedSends();
  /** Read cursors set while offline, sent once the socket is live (the latest per conversation). */
  private unsentReads = new Map<string, number>();
  private attempt = 0;
  private stopped = true;
  private live = false;
  private current: ConnectionState = 'disconnected';
  private me: string | null = null;
  /** The next `getToken` call should refresh (see TokenRequest.refresh). */
  private needRefresh = false;
  private lastToken: string | null = null;
  private gotReady = false;
  /** The handshake's `ready`, for the `connected` event that follows its `resumed`. */
  private readyFrame: FrameOf<'ready'> | null = null;
  /** A reconnect sent `resume` as soon as the socket opened (so `ready` need not). */
  private resumeSent = false;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private lastHeard = 0;

  constructor(private readonly opts: SocketClientOptions) {
    super();
    for (const [c, s] of Object.entries(opts.initialSeqs ?? {})) this.seqs.set(c, s);
    for (const [c, e] of Object.entries(opts.initialEpochs ?? {})) this.epochs.set(c, e);
    this.requests = new Requests((f) => this.raw(f), opts.requestTimeoutMs ?? 10_000);
    this.outbox = new Outbox(
      (f) => this.raw(f),
      () => this.live,
    );
  }

  /** `connected` while live; `connecting` while (re)connecting; `disconnected` once closed or given up. */
  get state(): ConnectionState {
    return this.current;
  }

  /** True while the socket is open and resumed (sends and requests go out at once). */
  get connected() {
    return this.live;
  }

  /** Connects; resolves once connected and resumed, rejects if the client gives up first. */
  connect(): Promise<void> {
    if (this.live) return Promise.resolve();
    const done = new Promise<void>((resolve, reject) => {
      const offC = this.on('connected', () => (offC(), offD(), resolve()));
      const offD = this.on('disconnected', (c) => {
        if (!c.willReconnect) offC(), offD(), reject(new HubbubError('CLOSED', `closed ${c.code} ${c.reason}`.trim()));
      });
    });
    if (this.stopped) {
      this.stopped = false;
      this.attempt = 0;
      void this.open();
    }
    return done;
  }

  /**
   * Sends a message; resolves with the ack. Queued while offline and resent after reconnects
   * with the same cid until acked: the hub stores it once.
   */
  send(
    conv: string,
    body: string,
    extra: { replyTo?: number; mentions?: string[]; attachments?: string[]; cid?: string; timeoutMs?: number } = {},
  ): Promise<Ack> {
    return this.outbox.add(conv, body, extra, extra.timeoutMs ?? this.opts.sendTimeoutMs ?? 30_000);
  }

  /** Edits one of your messages; resolves when the hub has stored the edit event. Queued while offline. */
  edit(conv: string, seq: number, body: string, opts: { mentions?: string[]; timeoutMs?: number } = {}): Promise<OkFrame> {
    const frame: ClientFrame = { type: 'edit', conv, seq, body };
    if (opts.mentions) frame.mentions = opts.mentions;
    return this.requests.add(frame, { ...opts, live: this.live }) as Promise<OkFrame>;
  }

  /** Deletes (redacts) one of your messages. Queued while offline. */
  delete(conv: string, seq: number, opts: { timeoutMs?: number } = {}): Promise<OkFrame> {
    return this.requests.add({ type: 'delete', conv, seq }, { ...opts, live: this.live }) as Promise<OkFrame>;
  }

  /** Adds (`on`) or removes a reaction. Queued while offline, and resent after a reconnect (it is idempotent). */
  react(conv: string, seq: number, emoji: string, on: boolean, opts: { timeoutMs?: number } = {}): Promise<OkFrame> {
    return this.requests.add({ type: 'react', conv, seq, emoji, on }, { ...opts, live: this.live, resend: true }) as Promise<OkFrame>;
  }

  /** Round trip to the hub in ms (rejects when offline: there is nothing to measure). */
  async ping(opts: { timeoutMs?: number } = {}): Promise<number> {
    if (!this.live) throw new HubbubError('CONNECTION_LOST', 'not connected');
    const t0 = Date.now();
    await this.requests.add({ type: 'ping' }, { ...opts, live: true });
    return Date.now() - t0;
  }

  /** Moves your read cursor forward (never back); sent when next connected if offline. */
  markRead(conv: string, seq: number) {
    this.setCursor(conv, this.me, seq);
    if (this.live) this.raw({ type: 'read', conv, seq });
    else this.unsentReads.set(conv, Math.max(seq, this.unsentReads.get(conv) ?? 0));
  }

  /** Says you are typing (dropped while offline: it would be stale by the time it arrived). */
  typing(conv: string) {
    if (this.live) this.raw({ type: 'typing', conv });
  }

  /** A user's read cursor in a conversation as this client knows it (yours when `user` is omitted). */
  readCursor(conv: string, user = this.me): number | undefined {
    return user ? this.cursors.get(conv)?.get(user) : undefined;
  }

  /** Closes for good (no reconnect); queued sends and requests are rejected with `CLOSED`. */
  close() {
    this.stopped = true;
    this.live = false;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.stopHeartbeat();
    const ws = this.ws;
    this.failAll(new HubbubError('CLOSED', 'the client was closed'));
    if (ws) ws.close(1000, 'bye');
    else this.setState('disconnected');
  }

  /** Drops the connection as a network failure would (tests, and the app's "reconnect now"). */
  drop() {
    this.live = false;
    this.ws?.close(4000, 'client drop');
  }

  /** Writes a frame if the socket is open; false if it could not. */
  private raw(frame: ClientFrame): boolean {
    if (this.ws?.readyState !== 1) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  private setState(s: ConnectionState) {
    if (s === this.current) return;
    this.current = s;
    this.emit('state', s);
  }

  private failAll(err: HubbubError) {
    this.outbox.failAll(err);
    this.requests.failAll(err);
  }

  private async open() {
    if (this.stopped) return;
    this.setState('connecting');
    this.emit('connecting', { attempt: this.attempt });
    const refresh = this.needRefresh || (this.lastToken !== null && tokenExpired(this.lastToken));
    let token: string | null;
    let Ctor: WebSocketCtor;
    try {
      token = await this.opts.getToken({ refresh });
      Ctor = this.opts.WebSocket ?? (await defaultWebSocket());
    } catch (err) {
      if (err instanceof HubbubError && err.code === 'NO_WEBSOCKET') return this.giveUp(1006, err.message);
      // getToken failed (the network, most likely): try again after the backoff.
      return this.scheduleReconnect();
    }
    if (this.stopped) return;
    if (!token) return this.giveUp(CloseCodes.UNAUTHORIZED.code, 'no token');
    this.needRefresh = false;
    this.lastToken = token;
    const base = typeof this.opts.url === 'function' ? this.opts.url() : this.opts.url;
    // `resume=1`: this client always sends `resume`, so the hub holds live delivery until it does.
    const url = base + (base.includes('?') ? '&' : '?') + 'resume=1';
    const ws = new Ctor(url, [PROTOCOL, `bearer.${token}`]);
    this.ws = ws;
    this.live = false;
    this.gotReady = false;
    this.resumeSent = false;
    ws.onopen = () => {
      if (this.ws !== ws || this.seqs.size === 0) return;
      // A reconnect: resume at once, without waiting for `ready`. The hub keeps the frame and
      // handles it right after `ready`, so live delivery never starts before the resume, however
      // busy this client or the hub is (conversations not named go live from `ready`).
      this.raw(this.resumeFrame(this.seqs.keys()));
      this.resumeSent = true;
    };
    ws.onmessage = (ev) => {
      this.lastHeard = Date.now();
      let f: ServerFrame;
      try {
        f = JSON.parse(String(ev.data)) as ServerFrame;
      } catch {
        return; // the hub sends JSON only; anything else is noise on a broken connection
      }
      if (this.ws === ws) this.onFrame(f);
    };
    ws.onclose = (ev) => this.onClose(ws, ev.code, ev.reason);
    // Every error is followed by a close, which does the work.
    ws.onerror = () => undefined;
  }

  private onClose(ws: WebSocketLike, code: number, reason: string) {
    if (this.ws !== ws) return;
    this.ws = null;
    this.live = false;
    this.stopHeartbeat();
    // The hub refused the token (4001), or the connect never reached `ready`, which is all a
    // browser sees of an upgrade refused with 401: the next connect asks for a fresh token.
    if (code === CloseCodes.UNAUTHORIZED.code || !this.gotReady) this.needRefresh = true;
    const willReconnect = !this.stopped && !final.has(code);
    this.requests.connectionLost();
    this.emit('disconnected', { code, reason, willReconnect });
    if (willReconnect) this.scheduleReconnect();
    else {
      this.stopped = true;
      this.failAll(new HubbubError('CLOSED', `closed ${code} ${reason}`.trim()));
      this.setState('disconnected');
    }
  }

  private giveUp(code: number, reason: string) {
    this.stopped = true;
    this.failAll(new HubbubError('CLOSED', reason));
    this.emit('disconnected', { code, reason, willReconnect: false });
    this.setState('disconnected');
  }

  private scheduleReconnect() {
    if (this.stopped) return;
    this.setState('connecting');
    const min = this.opts.minDelayMs ?? 200;
    const max = this.opts.maxDelayMs ?? 10_000;
    // Full jitter: a fleet reconnecting after a drain does not arrive all at once.
    const delay = Math.random() * Math.min(max, min * 2 ** this.attempt++);
    this.reconnectTimer = setTimeout(() => void this.open(), delay);
  }

  private setCursor(conv: string, user: string | null, seq: number) {
    if (!user) return;
    let m = this.cursors.get(conv);
    if (!m) this.cursors.set(conv, (m = new Map()));
    if (seq > (m.get(user) ?? 0)) m.set(user, seq);
  }

  private onFrame(f: ServerFrame) {
    this.emit('frame', f);
    switch (f.type) {
      case 'ready': {
        this.gotReady = true;
        this.me = f.user.id;
        this.emit('ready', f);
        // Resume every conversation we have seen; the ones we never saw go live from `ready`.
        const seen: string[] = [];
        for (const c of Object.keys(f.convs)) {
          if (this.seqs.has(c)) seen.push(c);
          else {
            this.seqs.set(c, f.convs[c]!);
            const epoch = f.epochs?.[c];
            if (epoch !== undefined) this.epochs.set(c, epoch);
          }
        }
        if (!this.resumeSent) this.raw(this.resumeFrame(seen));
        this.startHeartbeat(f.heartbeatMs);
        this.readyFrame = f;
        return;
      }
      case 'resumed': {
        this.live = true;
        this.attempt = 0;
        for (const [c, s] of Object.entries(f.cursors)) this.setCursor(c, this.me, s);
        for (const [c, e] of Object.entries(f.epochs ?? {})) this.epochs.set(c, e);
        for (const [conv, seq] of this.unsentReads) this.raw({ type: 'read', conv, seq });
        this.unsentReads.clear();
        this.outbox.flush();
        this.requests.flush();
        this.emit('resumed', f);
        this.setState('connected');
        const r = this.readyFrame;
        if (r) this.emit('connected', { user: r.user, session: r.session });
        return;
      }
      case 'event': {
        const last = this.seqs.get(f.conv);
        if (last !== undefined && f.seq <= last) return; // a duplicate: already delivered
        if (last !== undefined && f.seq !== last + 1) {
          // Should not happen (the server sends in order); recover by resuming.
          this.raw(this.resumeFrame([f.conv], null));
          return;
        }
        this.seqs.set(f.conv, f.seq);
        // Your own message is read by you.
        if (f.from && f.from === this.me) this.setCursor(f.conv, f.from, f.seq);
        this.emit('event', f);
        return;
      }
      case 'rewound': {
        // The position is void: everything held of this conversation belongs to a log that was
        // rewound. The hub now replays it from seq 1 of the new epoch (sends still waiting for an
        // ack go out after `resumed`, with their cids); acked sends above the recovery point are lost.
        this.seqs.set(f.conv, 0);
        this.epochs.set(f.conv, f.epoch);
        const lost = this.acked.lost(f.conv, f.epoch, f.restoredSeq);
        this.emit('rewound', { ...f, lost });
        return;
      }
      case 'gap':
        this.seqs.set(f.conv, f.toSeq);
        this.emit('gap', f);
        return;
      case 'read':
        this.setCursor(f.conv, f.user, f.seq);
        this.emit('read', f);
        return;
      case 'presence': {
        const p: { status: 'online' | 'offline'; lastSeen?: number } = { status: f.status };
        if (f.lastSeen !== undefined) p.lastSeen = f.lastSeen;
        this.presence.set(f.user, p);
        this.emit('presence', f);
        return;
      }
      case 'conversation':
        if (f.op === 'removed') {
          this.seqs.delete(f.conversation.id);
          this.epochs.delete(f.conversation.id);
          this.cursors.delete(f.conversation.id);
          this.acked.forget(f.conversation.id);
        }
        this.emit('conversation', f);
        return;
      case 'typing':
        this.emit('typing', f);
        return;
      case 'limits':
        this.emit('limits', f);
        return;
      case 'ack': {
        const ack = this.outbox.ack(f);
        const epoch = this.epochs.get(f.conv);
        if (ack && epoch !== undefined) this.acked.remember(ack, epoch);
        return;
      }
      case 'error':
        return this.onError(f);
      default:
        // ok, pong: replies to requests
        if (f.ref) this.requests.reply(f.ref, f);
    }
  }

  private onError(f: FrameOf<'error'>) {
    if (!f.ref) return this.emit('error', f);
    // A resume refused for the hub's work budget (RATE_LIMITED): ask again after a jittered
    // pause; live delivery waits for it, so nothing is missed meanwhile.
    if (f.ref === 'resume' && f.code === 'RATE_LIMITED') {
      setTimeout(() => this.raw(this.resumeFrame(this.seqs.keys())), 500 + Math.random() * 1000);
      return;
    }
    if (this.outbox.error({ ...f, ref: f.ref })) return;
    if (!this.requests.fail(f.ref, new HubbubError(f.code, f.message))) this.emit('error', f);
  }

  /** A `resume` of these conversations from the seqs held, each with the epoch it was seen in (where known). */
  private resumeFrame(convs: Iterable<string>, ref: string | null = 'resume'): ClientFrame {
    const seqs: Record<string, number> = {};
    const epochs: Record<string, number> = {};
    for (const c of convs) {
      const seq = this.seqs.get(c);
      if (seq === undefined) continue;
      seqs[c] = seq;
      const epoch = this.epochs.get(c);
      if (epoch !== undefined) epochs[c] = epoch;
    }
    const frame: ClientFrame = { type: 'resume', convs: seqs, epochs };
    if (ref) frame.ref = ref;
    return frame;
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
