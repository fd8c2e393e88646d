import type { StoredEvent } from '../store/message-store.ts';
import type { EventFrame, ServerFrame } from '../protocol/frames.ts';

/** The wire shape of a stored event: `{type:'event', conv, seq, kind, id, from, ts, cid?, …data}`. */
export function eventFrame(e: StoredEvent): EventFrame {
  const frame: EventFrame = { ...e.data, type: 'event', conv: e.conv, seq: e.seq, kind: e.kind, id: e.id, from: e.from, ts: e.ts };
  if (e.cid !== undefined) frame.cid = e.cid;
  return frame;
}

/** Encodes an event frame once; the same string goes to every socket and over the bus. */
export const encodeEvent = (e: StoredEvent): string => JSON.stringify(eventFrame(e));

export const encode = (f: ServerFrame) => JSON.stringify(f);

/**
 * A frame as sockets get it: a JSON string, or its UTF-8 bytes. Bytes are what a frame going to
 * many sockets is turned into once (uWS would otherwise encode the string again per socket), and
 * what arrives from the bus.
 */
export type Frame = string | Uint8Array;

/** The frame's bytes, encoded once for a fanout. */
export const frameBytes = (f: Frame): Uint8Array => (typeof f === 'string' ? Buffer.from(f) : f);

const BAR = 0x7c; // '|'
const TILDE = 0x7e; // '~'

/**
 * Bus payloads on a conversation channel:
 *   `E<seq>|<acceptedAtMs>[~<publishedAtMs>]|<event frame json>`  an event, with the time its hub
 *      accepted it and (for the bus stage of send-stages.ts) when it was published;
 *   `R<seq>|<acceptedAtMs>|<author>|<readSeq>|<event frame json>`  the same, where the event's
 *      commit also moved its author's read cursor to readSeq: the author's sockets get a `read`;
 *   `F|<userId to skip or empty>|<frame json>`   an ephemeral frame (typing, read, presence, updates).
 * The header is parsed with indexOf; the frame bytes are sliced, never re-parsed.
 */
/** An event's author's read cursor, moved by the event's own commit (the `R` payload carries it). */
export interface OwnRead {
  user: string;
  seq: number;
}

export const busEvent = (seq: number, acceptedAt: number, frame: string, read?: OwnRead, publishedAt?: number) => {
  const at = publishedAt === undefined ? acceptedAt : `${acceptedAt}~${publishedAt}`;
  return read ? `R${seq}|${at}|${read.user}|${read.seq}|${frame}` : `E${seq}|${at}|${frame}`;
};
export const busFrame = (frame: string, skipUser = '') => `F|${skipUser}|${frame}`;

export type BusMessage =
  | { t: 'E'; seq: number; acceptedAt: number; publishedAt?: number; frame: Uint8Array; read?: OwnRead }
  | { t: 'F'; skipUser: string; frame: Uint8Array };

/** Parses a bus payload's header; the frame is a view of the payload's bytes (no copy, no decode). */
export function parseBus(payload: Buffer): BusMessage | null {
  const a = payload.indexOf(BAR);
  const b = a < 0 ? -1 : payload.indexOf(BAR, a + 1);
  if (b < 0) return null;
  const kind = payload[0];
  if (kind === 0x45 /* E */ || kind === 0x52 /* R */) {
    const seq = Number(payload.toString('latin1', 1, a));
    const tilde = payload.indexOf(TILDE, a + 1);
    const timed = tilde > 0 && tilde < b;
    const acceptedAt = Number(payload.toString('latin1', a + 1, timed ? tilde : b));
    const publishedAt = timed ? Number(payload.toString('latin1', tilde + 1, b)) : undefined;
    if (!Number.isSafeInteger(seq) || seq < 1) return null;
    if (kind === 0x45) return { t: 'E', seq, acceptedAt, publishedAt, frame: payload.subarray(b + 1) };
    const c = payload.indexOf(BAR, b + 1);
    const d = c < 0 ? -1 : payload.indexOf(BAR, c + 1);
    if (d < 0) return null;
    const readSeq = Number(payload.toString('latin1', c + 1, d));
    if (!Number.isSafeInteger(readSeq) || readSeq < 1) return null;
    return {
      t: 'E',
      seq,
      acceptedAt,
      publishedAt,
      frame: payload.subarray(d + 1),
      read: { user: payload.toString('latin1', b + 1, c), seq: readSeq },
    };
  }
  if (kind === 0x46 /* F */) return { t: 'F', skipUser: payload.toString('utf8', a + 1, b), frame: payload.subarray(b + 1) };
  return null;
}
