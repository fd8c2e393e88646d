/**
 * One socket client for every server the bench drives, on `ws`, so each scenario has one code path whatever the target:
 *   hubbub          protocol v1: token at the upgrade, `?resume=1` (live delivery waits for the client's `resume`)
 *   uws, ws, floor  the peers: the same frames and header
 *   socketio        Engine.IO v4 over a raw WebSocket: `0{…}` open → `40{"token"}` connect; `2` ping → `3` pong;
 *                   `42["f",frame]` server frames; `42<id>["send",frame]` → `43<id>[reply]`
 * Event frames are the hot path (tens of thousands a second in one process), so they are not JSON.parsed: the fields
 * the scenarios need are cut out of the text. Presence frames are dropped unparsed. This file is the generator's only
 * import of the protocol's frame types.
 */
import WebSocket from 'ws';
import type { ClientFrame, ServerFrame } from '@hubbub/client/protocol';

export type { ServerFrame };
export type ServerKind = 'hubbub' | 'uws' | 'ws' | 'socketio' | 'floor';

/** Wall-clock milliseconds with sub-millisecond resolution. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

interface Handlers {
  /** Frames may be sent (for Socket.IO: after its CONNECT). */
  onOpen?(): void;
  onFrame?(f: ServerFrame, t: number): void;
  /** An event frame as text; `t` is when this process read it. */
  onEvent?(d: string, t: number): void;
  onClose(code: number): void;
  onError(message: string): void;
}

export interface Conn {
  ws: WebSocket;
  kind: ServerKind;
  nextAck: number;
  closed: boolean;
  /** How far the handshake got, for diagnostics. */
  state: string;
}

const EVENT = '"type":"event"';
const PRESENCE = '"type":"presence"';
const EVENT_BYTES = Buffer.from(EVENT);
const PRESENCE_BYTES = Buffer.from(PRESENCE);

/** Opens one socket to `url`, its local side bound to `localAddress` (127.0.x.y). */
export function openSocket(kind: ServerKind, url: string, token: string, localAddress: string | undefined, h: Handlers): Conn {
  const sio = kind === 'socketio';
  const target = kind === 'hubbub' ? url + (url.includes('?') ? '&' : '?') + 'resume=1' : url;
  const headers = sio ? {} : { authorization: `Bearer ${token}` };
  const ws = new WebSocket(target, { headers, localAddress, perMessageDeflate: false, skipUTF8Validation: true, handshakeTimeout: 30_000 });
  const c: Conn = { ws, kind, nextAck: 1, closed: false, state: 'connecting' };
  ws.on('message', (data: Buffer) => {
    const t = nowMs();
    if (!sio) {
      // Searched in the raw bytes and decoded as latin1 (a copy, no UTF-8 decoding): the fields read from it are ASCII.
      if (data.indexOf(EVENT_BYTES) !== -1) return h.onEvent?.(data.toString('latin1'), t);
      if (data.indexOf(PRESENCE_BYTES) !== -1) return;
      return h.onFrame?.(JSON.parse(String(data)) as ServerFrame, t);
    }
    const d = String(data);
    if (d[0] === '0') return ((c.state = 'eio-open'), ws.send('40' + JSON.stringify({ token })));
    if (d[0] === '2') return ws.send('3');
    if (d[0] !== '4') return;
    if (d[1] === '2') {
      if (d.includes(EVENT)) return h.onEvent?.(d, t);
      if (d.includes(PRESENCE)) return;
      return h.onFrame?.((JSON.parse(d.slice(2)) as [string, ServerFrame])[1], t);
    }
    if (d[1] === '3') return h.onFrame?.((JSON.parse(d.slice(d.indexOf('['))) as ServerFrame[])[0]!, t);
    if (d[1] === '4') return h.onError('connect_error ' + d.slice(2));
    if (d[1] === '0') return ((c.state = 'sio-connected'), h.onOpen?.());
    if (d[1] === '1') c.state = 'sio-disconnected';
  });
  ws.on('open', () => {
    c.state = 'open';
    if (!sio) h.onOpen?.();
  });
  ws.on('close', (code) => {
    c.closed = true;
    h.onClose(code);
  });
  ws.on('error', (err) => h.onError(err.message));
  return c;
}

/** Sends a client frame in the target's framing; false if the socket is not open. */
export function sendFrame(c: Conn, frame: ClientFrame): boolean {
  if (c.closed || c.ws.readyState !== WebSocket.OPEN) return false;
  c.ws.send(c.kind === 'socketio' ? '42' + c.nextAck++ + JSON.stringify([frame.type, frame]) : JSON.stringify(frame));
  return true;
}

export function closeSocket(c: Conn | null | undefined): void {
  if (!c || c.closed) return;
  c.closed = true;
  c.ws.close();
}

/** `seq` of an event frame's text, or -1 where the server has none (the Socket.IO peer). */
export function eventSeq(d: string): number {
  const i = d.indexOf('"seq":');
  return i === -1 ? -1 : parseInt(d.slice(i + 6, i + 24), 10);
}

const PAD = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(120);

/** A body `<sent µs since the epoch>|<sender slot>|<sender's n>|`, padded to `size`: latency and per-sender order. */
export function makeBody(sentUs: number, slot: number, n: number, size: number): string {
  const head = `${sentUs}|${slot}|${n}|`;
  return size > head.length ? head + PAD.slice(0, size - head.length) : head;
}

/** The body of an event frame's text, parsed into `out` = [sentUs, slot, n] (the generator's bodies hold no quotes). */
export function parseBody(d: string, out: number[]): number[] {
  const s = d.indexOf('"body":"') + 8;
  const a = d.indexOf('|', s);
  const b = d.indexOf('|', a + 1);
  out[0] = Number(d.slice(s, a));
  out[1] = Number(d.slice(a + 1, b));
  out[2] = Number(d.slice(b + 1, d.indexOf('|', b + 1)));
  return out;
}
