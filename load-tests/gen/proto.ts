/**
 * One socket client for the four servers the bench drives, on `ws`, so every scenario has one
 * code path whatever the target:
 *   hubbub   Hubbub protocol v1 (`Authorization: Bearer` at the upgrade, `?resume=1`: live
 *            delivery waits for the client's `resume`)
 *   uws, ws  the bare uWebSockets.js and plain `ws` peers: the same frames, the same header
 *   socketio the Socket.IO peer: Engine.IO v4 over a raw WebSocket (`0{…}` open → `40{"token"}`
 *            connect; `2` ping → `3` pong; `42["f",frame]` server frames; `42<id>["send",frame]`
 *            → `43<id>[reply]`)
 *
 * Event frames are the hot path (tens of thousands a second in one process), so they are not
 * JSON.parsed: the few fields the scenarios need are cut out of the text (`eventSeq`,
 * `eventBody`). Presence frames (a socket gets its contacts' snapshot and every room-mate coming
 * online) are dropped unparsed; every other frame is parsed.
 */
import WebSocket from 'ws';
import type { ServerKind } from '../harness/servers.ts';

export type Proto = ServerKind;

/** Wall-clock milliseconds with sub-millisecond resolution (performance.now on the epoch). */
export const nowMs = (): number => performance.timeOrigin + performance.now();

export interface Frame {
  type: string;
  ref?: string;
  seq?: number;
  convs?: Record<string, number>;
  [k: string]: unknown;
}

export interface Handlers {
  /** The socket is open and frames may be sent (for Socket.IO: after its CONNECT). */
  onOpen?(): void;
  onFrame(f: Frame, t: number): void;
  /** An event frame, as text; `t` is when this process read it (nowMs). */
  onEvent(d: string, t: number): void;
  onClose(code: number): void;
  onError(message: string): void;
}

export interface Conn {
  ws: WebSocket;
  proto: Proto;
  nextAck: number;
  closed: boolean;
  /** How far the handshake got, for diagnostics. */
  state: string;
}

const EVENT_MARK = '"type":"event"';
const PRESENCE_MARK = '"type":"presence"';
const EVENT_MARK_BYTES = Buffer.from(EVENT_MARK);
const PRESENCE_MARK_BYTES = Buffer.from(PRESENCE_MARK);
/**
 * An event frame's text: found in the raw bytes (a native search) and decoded as latin1, which
 * copies bytes instead of decoding UTF-8; the fields read from it (seq, the generator's own
 * body) are ASCII.
 */
const asEvent = (data: Buffer): string | null => (data.indexOf(EVENT_MARK_BYTES) === -1 ? null : data.toString('latin1'));

/** Opens one socket to `url`, binding its local side to `localAddress` (127.0.x.y). */
export function openSocket(proto: Proto, url: string, token: string, localAddress: string | undefined, h: Handlers): Conn {
  const target = proto === 'hubbub' ? url + (url.includes('?') ? '&' : '?') + 'resume=1' : url;
  const ws = new WebSocket(target, {
    headers: proto === 'socketio' ? {} : { authorization: `Bearer ${token}` },
    localAddress,
    perMessageDeflate: false,
    skipUTF8Validation: true,
    handshakeTimeout: 30_000,
  });
  const c: Conn = { ws, proto, nextAck: 1, closed: false, state: 'connecting' };
  if (proto === 'socketio') {
    ws.on('message', (data) => {
      const t = nowMs();
      const d = String(data);
      switch (d.charCodeAt(0)) {
        case 48: // '0' open: connect to the main namespace with the token as auth payload
          c.state = 'eio-open';
          ws.send('40' + JSON.stringify({ token }));
          return;
        case 50: // '2' ping
          ws.send('3');
          return;
        case 52: {
          const kind = d.charCodeAt(1);
          if (kind === 50) {
            // '42' event: ["f", frame]
            if (d.includes(EVENT_MARK)) return h.onEvent(d, t);
            if (d.includes(PRESENCE_MARK)) return;
            return h.onFrame((JSON.parse(d.slice(2)) as [string, Frame])[1], t);
          }
          if (kind === 51) return h.onFrame((JSON.parse(d.slice(d.indexOf('['))) as Frame[])[0]!, t); // '43<id>[reply]'
          if (kind === 52) return h.onError('connect_error ' + d.slice(2)); // '44'
          if (kind === 48) {
            c.state = 'sio-connected'; // '40'
            h.onOpen?.();
          } else if (kind === 49) c.state = 'sio-disconnected'; // '41'
          return;
        }
        default:
          return;
      }
    });
  } else {
    ws.on('message', (data: Buffer) => {
      const t = nowMs();
      const ev = asEvent(data);
      if (ev !== null) return h.onEvent(ev, t);
      if (data.indexOf(PRESENCE_MARK_BYTES) !== -1) return;
      h.onFrame(JSON.parse(String(data)) as Frame, t);
    });
  }
  ws.on('open', () => {
    c.state = 'open';
    if (proto !== 'socketio') h.onOpen?.();
  });
  ws.on('close', (code) => {
    c.closed = true;
    h.onClose(code);
  });
  ws.on('error', (err) => h.onError(err.message));
  return c;
}

/** Sends a client frame (`{type, …}`) in the target's framing. False if the socket is not open. */
export function sendFrame(c: Conn, frame: Frame): boolean {
  if (c.closed || c.ws.readyState !== WebSocket.OPEN) return false;
  if (c.proto === 'socketio') c.ws.send('42' + c.nextAck++ + JSON.stringify([frame.type, frame]));
  else c.ws.send(JSON.stringify(frame));
  return true;
}

export function closeSocket(c: Conn | null | undefined): void {
  if (!c || c.closed) return;
  c.closed = true;
  try {
    c.ws.close();
  } catch {
    // already closing
  }
}

/** Drops a socket without a close handshake (what a lost network looks like to the server). */
export function dropSocket(c: Conn | null | undefined): void {
  if (!c) return;
  c.closed = true;
  c.ws.terminate();
}

/** `seq` of an event frame's text, or -1 where the server has none (Socket.IO peer). */
export function eventSeq(d: string): number {
  const i = d.indexOf('"seq":');
  if (i === -1) return -1;
  return parseInt(d.slice(i + 6, i + 24), 10);
}

/** `body` of an event frame's text (the generator's bodies hold no quotes or escapes). */
export function eventBody(d: string): string {
  const i = d.indexOf('"body":"');
  if (i === -1) return '';
  const s = i + 8;
  return d.slice(s, d.indexOf('"', s));
}

const PAD = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(120);

/**
 * A message body: `<sent µs since the epoch>|<sender slot>|<sender's n>|` padded to `size`
 * characters, so receivers get the send time for latency and a per-sender counter for order.
 */
export function makeBody(sentUs: number, slot: number, n: number, size: number): string {
  const head = `${sentUs}|${slot}|${n}|`;
  return size > head.length ? head + PAD.slice(0, size - head.length) : head;
}

/** Parses a body made by makeBody into `out`: [sentUs, slot, n]. */
export function parseBody(b: string, out: number[]): number[] {
  const a = b.indexOf('|');
  const c = b.indexOf('|', a + 1);
  const e = b.indexOf('|', c + 1);
  out[0] = Number(b.slice(0, a));
  out[1] = Number(b.slice(a + 1, c));
  out[2] = Number(b.slice(c + 1, e));
  return out;
}
