import WebSocket from 'ws';
import { SocketClient, type WebSocketCtor } from '@hubbub/client';

/**
 * A chat client for the deploy drills: the SDK's SocketClient (reconnect with jitter, resume,
 * send retries with the same cid), checked below the SDK. Every `event` frame as the server sent
 * it must carry the next seq of its conversation: the SDK would silently drop a duplicate and
 * re-resume on a gap, so the check reads raw frames, not the SDK's events. It also records which
 * hub each connection landed on (the balancer's `x-served-by` header), each reconnect's time
 * from close to `resumed`, and the longest silence between events.
 */
export class DrillClient {
  readonly sdk: SocketClient;
  /** Per conversation, the last seq received in order. */
  readonly last = new Map<string, number>();
  /** Per conversation, where this client's log started (its first `ready`). */
  readonly start = new Map<string, number>();
  /** `conv:seq` of every message event received in order. */
  readonly received = new Set<string>();
  duplicates = 0;
  outOfOrder = 0;
  readonly closes = new Map<number, number>();
  /** Closes other than a drain's 1012: code, reason and the hub, for the report. */
  readonly unexpected: string[] = [];
  readonly reconnectMs: number[] = [];
  hub = '';
  readonly hubs: string[] = [];
  maxGapMs = 0;
  /** When set, gaps between events are measured (only while the load runs). */
  measuring = false;
  openedAt = 0;
  /** Longest time one connection stayed open. */
  longestConnectionMs = 0;
  private lastEventAt = 0;
  private closedAt = 0;
  private waiters: { pred: () => boolean; resolve: () => void }[] = [];

  constructor(
    readonly name: string,
    url: string,
    token: string,
  ) {
    const self = this;
    class Tracking extends WebSocket {
      constructor(u: string, protocols?: string | string[]) {
        super(u, protocols);
        this.once('upgrade', (res) => {
          self.hub = String(res.headers['x-served-by'] ?? '?');
          self.hubs.push(self.hub);
          self.openedAt = Date.now();
        });
      }
    }
    this.sdk = new SocketClient({ url, getToken: () => token, WebSocket: Tracking as unknown as WebSocketCtor, sendTimeoutMs: 0 });
    this.sdk.on('frame', (f) => {
      if (f.type === 'ready') {
        for (const [conv, v] of Object.entries(f.convs)) {
          if (this.last.has(conv)) continue;
          const seq = typeof v === 'number' ? v : (v as { seq: number }).seq;
          this.last.set(conv, seq);
          this.start.set(conv, seq);
        }
      } else if (f.type === 'event') {
        const last = this.last.get(f.conv) ?? 0;
        if (f.seq <= last) this.duplicates++;
        else if (f.seq !== last + 1) this.outOfOrder++;
        else {
          this.last.set(f.conv, f.seq);
          if (f.kind === 'message') this.received.add(`${f.conv}:${f.seq}`);
          const now = Date.now();
          if (this.measuring && this.lastEventAt) this.maxGapMs = Math.max(this.maxGapMs, now - this.lastEventAt);
          this.lastEventAt = now;
        }
      }
      for (const w of [...this.waiters]) if (w.pred()) this.waiters.splice(this.waiters.indexOf(w), 1), w.resolve();
    });
    this.sdk.on('disconnected', (c) => {
      this.closes.set(c.code, (this.closes.get(c.code) ?? 0) + 1);
      if (c.code !== 1012) this.unexpected.push(`${this.name} on ${this.hub}: ${c.code} ${c.reason}`.trim());
      this.closedAt = Date.now();
      if (this.openedAt) this.longestConnectionMs = Math.max(this.longestConnectionMs, this.closedAt - this.openedAt);
      this.openedAt = 0;
    });
    this.sdk.on('resumed', () => {
      if (this.closedAt) this.reconnectMs.push(Date.now() - this.closedAt);
      this.closedAt = 0;
    });
  }

  connect() {
    return this.sdk.connect();
  }

  /** Resolves once `pred` holds, re-checked at each frame. */
  until(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: () => (clearTimeout(t), resolve()) };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`${this.name}: timed out waiting for ${what}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  close() {
    if (this.openedAt) this.longestConnectionMs = Math.max(this.longestConnectionMs, Date.now() - this.openedAt);
    this.sdk.close();
  }
}
