// One socket client for the three servers the bench drives, so every k6 script has one code
// path whatever the target:
//   PROTO=hubbub   Hubbub protocol v1 (`Authorization: Bearer` at the upgrade)
//   PROTO=ws       the plain `ws` peer: the same frames, the same header
//   PROTO=uws      the bare uWebSockets.js peer: the same as ws
//   PROTO=socketio the Socket.IO peer: Engine.IO v4 over a raw WebSocket
//                  (`0{…}` open → `40{"token"}` connect; `2` ping → `3` pong;
//                  `42["f",frame]` server frames; `42<id>["send",frame]` → `43<id>[reply]`)
//
// Event frames are the hot path (tens of thousands a second in one k6 process), so they are
// not JSON.parsed: the few fields the scripts need are cut out of the text (`eventConv`,
// `eventSeq`, `eventBody`). Every other frame is parsed normally.
import { WebSocket } from 'k6/websockets';

export const PROTO = __ENV.PROTO || 'hubbub';
if (!['hubbub', 'uws', 'ws', 'socketio'].includes(PROTO)) throw new Error(`PROTO must be hubbub, uws, ws or socketio, not ${PROTO}`);

/** Whether the server numbers events per conversation (seq); the Socket.IO peer does not. */
export const HAS_SEQ = PROTO !== 'socketio';

/** Target socket URLs, comma separated; sockets are spread over them round robin. */
export function targets() {
  const list = (__ENV.TARGETS || 'ws://127.0.0.1:3000/ws').split(',').map((s) => s.trim()).filter(Boolean);
  if (!list.length) throw new Error('TARGETS is empty');
  return list;
}

/** The HTTP base (for tRPC) of each target. */
export function httpBases() {
  return targets().map((u) => u.replace(/^ws/, 'http').replace(/\/(ws|socket\.io\/).*$/, ''));
}

const EVENT_MARK = '"type":"event"';

/**
 * Opens one socket. `h.onEvent(raw, recvMs)` gets event frames as text, `h.onFrame(frame,
 * recvMs)` every other frame as an object, `h.onClose(code)` and `h.onError(message)` the
 * end. `recvMs` is the time (float ms since the epoch) k6's reader goroutine took the frame
 * off the socket, so queueing inside the k6 event loop does not count as server latency.
 */
export function openSocket(url, token, h) {
  // `state` is for diagnostics: how far the handshake got when something goes wrong.
  const c = { ws: null, nextAck: 1, closed: false, state: 'connecting' };
  if (PROTO === 'socketio') {
    c.ws = new WebSocket(url);
    c.ws.onmessage = (e) => {
      const d = e.data;
      const t = e.timestamp;
      switch (d.charCodeAt(0)) {
        case 48: // '0' open: connect to the main namespace with the token as auth payload
          c.state = 'eio-open';
          c.ws.send('40' + JSON.stringify({ token }));
          return;
        case 50: // '2' ping
          c.ws.send('3');
          return;
        case 52: {
          // '4' message
          const kind = d.charCodeAt(1);
          if (kind === 50) {
            // '42' event: ["f", frame]
            if (d.indexOf(EVENT_MARK) !== -1) return h.onEvent(d, t);
            const arr = JSON.parse(d.slice(2));
            return h.onFrame(arr[1], t);
          }
          if (kind === 51) {
            // '43<id>[reply]'
            return h.onFrame(JSON.parse(d.slice(d.indexOf('[')))[0], t);
          }
          if (kind === 52) return h.onError('connect_error ' + d.slice(2)); // '44'
          if (kind === 48) c.state = 'sio-connected'; // '40'
          else if (kind === 49) c.state = 'sio-disconnected'; // '41'
          return;
        }
        default:
          return;
      }
    };
  } else {
    // Every script resumes, so Hubbub sockets say so at the upgrade (live delivery waits for it).
    const target = PROTO === 'hubbub' ? url + (url.indexOf('?') === -1 ? '?' : '&') + 'resume=1' : url;
    c.ws = new WebSocket(target, null, { headers: { Authorization: 'Bearer ' + token } });
    c.ws.onmessage = (e) => {
      const d = e.data;
      if (d.indexOf(EVENT_MARK) !== -1) return h.onEvent(d, e.timestamp);
      h.onFrame(JSON.parse(d), e.timestamp);
    };
  }
  c.ws.onopen = () => {
    c.state = 'open';
    // Frames may be sent from here on (Socket.IO needs its CONNECT first, so only the others).
    if (h.onOpen && PROTO !== 'socketio') h.onOpen();
  };
  c.ws.onclose = (e) => {
    c.closed = true;
    if (h.onClose) h.onClose(e.code);
  };
  c.ws.onerror = (e) => {
    if (h.onError) h.onError(String(e.error || 'error'));
  };
  return c;
}

/** Sends a client frame (`{type, …}`) in the target's framing. False if the socket is not open. */
export function sendFrame(c, frame) {
  if (c.closed || c.ws.readyState !== 1) return false;
  if (PROTO === 'socketio') c.ws.send('42' + c.nextAck++ + JSON.stringify([frame.type, frame]));
  else c.ws.send(JSON.stringify(frame));
  return true;
}

export function closeSocket(c) {
  if (c.closed) return;
  c.closed = true;
  try {
    c.ws.close();
  } catch (_) {
    // already closing
  }
}

function stringField(d, key) {
  const i = d.indexOf(key);
  if (i === -1) return null;
  const s = i + key.length;
  return d.slice(s, d.indexOf('"', s));
}

/** `conv` of an event frame's text. */
export const eventConv = (d) => stringField(d, '"conv":"');

/** `seq` of an event frame's text, or -1 where the server has none (Socket.IO peer). */
export function eventSeq(d) {
  const i = d.indexOf('"seq":');
  if (i === -1) return -1;
  return parseInt(d.slice(i + 6, i + 24), 10);
}

/** `body` of an event frame's text (the scripts' bodies hold no quotes or escapes). */
export const eventBody = (d) => stringField(d, '"body":"');

/**
 * A message body: `<sentAtMs>|<sender slot>|<sender's n>|` padded to `size` characters, so
 * receivers get the send time for latency and a per-sender counter for order checks.
 */
export function makeBody(sentAt, slot, n, size) {
  const head = sentAt + '|' + slot + '|' + n + '|';
  return size > head.length ? head + PAD.slice(0, size - head.length) : head;
}
const PAD = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(120);

/** Parses a body made by makeBody: [sentAtMs, slot, n]. */
export function parseBody(b) {
  const a = b.indexOf('|');
  const c = b.indexOf('|', a + 1);
  const e = b.indexOf('|', c + 1);
  return [Number(b.slice(0, a)), Number(b.slice(a + 1, c)), Number(b.slice(c + 1, e))];
}

/** The convs map a client sends in `resume`, from the heads in `ready` (nothing missed yet). */
export function resumeFrame(ref, convs) {
  return { type: 'resume', ref, convs };
}
