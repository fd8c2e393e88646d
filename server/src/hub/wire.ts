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
 * Bus payloads on a conversation channel:
 *   `E<seq>|<acceptedAtMs>|<event frame json>`  an event, with the time its hub accepted it;
 *   `F|<userId to skip or empty>|<frame json>`   an ephemeral frame (typing, read, presence, updates).
 * The header is parsed with indexOf; the frame bytes are sliced, never re-parsed.
 */
export const busEvent = (seq: number, acceptedAt: number, frame: string) => `E${seq}|${acceptedAt}|${frame}`;
export const busFrame = (frame: string, skipUser = '') => `F|${skipUser}|${frame}`;

export type BusMessage =
  | { t: 'E'; seq: number; acceptedAt: number; frame: string }
  | { t: 'F'; skipUser: string; frame: string };

export function parseBus(payload: string): BusMessage | null {
  const a = payload.indexOf('|');
  const b = a < 0 ? -1 : payload.indexOf('|', a + 1);
  if (b < 0) return null;
  if (payload[0] === 'E') {
    const seq = Number(payload.slice(1, a));
    const acceptedAt = Number(payload.slice(a + 1, b));
    if (!Number.isSafeInteger(seq) || seq < 1) return null;
    return { t: 'E', seq, acceptedAt, frame: payload.slice(b + 1) };
  }
  if (payload[0] === 'F') return { t: 'F', skipUser: payload.slice(a + 1, b), frame: payload.slice(b + 1) };
  return null;
}
