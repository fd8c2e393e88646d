import type { z } from 'zod';
import { clientFrame, type ClientFrame } from './frames.ts';
import { hasVisible, isMultiLine, isSingleLine, normaliseLines } from './text.ts';

/**
 * Client frames validated without zod on the way in: a hand-written check of every frame type
 * that accepts exactly what `clientFrame` accepts and returns the value it returns (deep-equal,
 * the same keys in the same order, nothing stripped or added). zod still has the last word:
 * whatever the fast path does not accept goes to `clientFrame.safeParse`, so a refusal carries
 * zod's own issue and its text reaches the client unchanged. fast-frames.test.ts checks the
 * equivalence on generated valid, near-valid and arbitrary frames; a change to frames.ts has to
 * be made here too, and that test is what says so.
 */
export type ClientFrameParse = { ok: true; frame: ClientFrame } | { ok: false; issue: z.core.$ZodIssue };

export function parseClientFrame(raw: unknown): ClientFrameParse {
  const frame = fastClientFrame(raw);
  if (frame !== undefined) return { ok: true, frame };
  const parsed = clientFrame.safeParse(raw);
  return parsed.success ? { ok: true, frame: parsed.data } : { ok: false, issue: parsed.error.issues[0]! };
}

/**
 * The frame zod would return for `raw`, or undefined where zod would refuse it. Exact on every
 * value `JSON.parse` returns. On other plain data (symbol keys, non-enumerable or `undefined`
 * properties, other prototypes) it may return undefined where zod accepts, never a frame zod
 * refuses or one it would build differently. Getters and proxies are for neither.
 */
export function fastClientFrame(raw: unknown): ClientFrame | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const o = raw as Record<string, unknown>;
  const ref = o.ref;
  if (ref !== undefined && !isRef(ref)) return undefined;
  // The keys the frame must have: any other enumerable key (including an own `__proto__`) is one
  // a strict object refuses, and an optional key present as `undefined` is left to zod.
  let keys = ref === undefined ? 1 : 2;
  let f: ClientFrame;
  switch (o.type) {
    case 'send': {
      const { conv, cid, replyTo, mentions, attachments } = o;
      // The body may be absent (a message of attachments alone); present, it must be valid.
      const body = o.body === undefined ? undefined : bodyOf(o.body);
      if (!isUuid(conv) || !isText(cid, 64) || (o.body !== undefined && body === undefined)) return undefined;
      if (replyTo !== undefined && !isSeq(replyTo)) return undefined;
      const m = mentions === undefined ? undefined : uuids(mentions);
      if (m === null) return undefined;
      const a = attachments === undefined ? undefined : uuids(attachments, MAX_ATTACHMENTS);
      if (a === null || (a !== undefined && a.length === 0)) return undefined;
      keys += 2 + (body === undefined ? 0 : 1) + (replyTo === undefined ? 0 : 1) + (m === undefined ? 0 : 1) + (a === undefined ? 0 : 1);
      const s: Extract<ClientFrame, { type: 'send' }> = ref === undefined ? { type: 'send', conv, cid } : { type: 'send', ref, conv, cid };
      if (body !== undefined) s.body = body;
      if (replyTo !== undefined) s.replyTo = replyTo;
      if (m !== undefined) s.mentions = m;
      if (a !== undefined) s.attachments = a;
      f = s;
      break;
    }
    case 'read': {
      const { conv, seq } = o;
      if (!isUuid(conv) || !isCursor(seq)) return undefined;
      keys += 2;
      f = ref === undefined ? { type: 'read', conv, seq } : { type: 'read', ref, conv, seq };
      break;
    }
    case 'typing': {
      const { conv } = o;
      if (!isUuid(conv)) return undefined;
      keys += 1;
      f = ref === undefined ? { type: 'typing', conv } : { type: 'typing', ref, conv };
      break;
    }
    case 'ping':
      f = ref === undefined ? { type: 'ping' } : { type: 'ping', ref };
      break;
    case 'resume': {
      const convs = cursors(o.convs);
      if (convs === undefined) return undefined;
      keys += 1;
      f = ref === undefined ? { type: 'resume', convs } : { type: 'resume', ref, convs };
      break;
    }
    case 'edit': {
      const { conv, seq, mentions } = o;
      const body = bodyOf(o.body);
      if (!isUuid(conv) || !isSeq(seq) || body === undefined) return undefined;
      const m = mentions === undefined ? undefined : uuids(mentions);
      if (m === null) return undefined;
      keys += 3 + (m === undefined ? 0 : 1);
      const e: Extract<ClientFrame, { type: 'edit' }> =
        ref === undefined ? { type: 'edit', conv, seq, body } : { type: 'edit', ref, conv, seq, body };
      if (m !== undefined) e.mentions = m;
      f = e;
      break;
    }
    case 'delete': {
      const { conv, seq } = o;
      if (!isUuid(conv) || !isSeq(seq)) return undefined;
      keys += 2;
      f = ref === undefined ? { type: 'delete', conv, seq } : { type: 'delete', ref, conv, seq };
      break;
    }
    case 'react': {
      const { conv, seq, emoji, on } = o;
      if (!isUuid(conv) || !isSeq(seq) || !isEmoji(emoji) || typeof on !== 'boolean') return undefined;
      keys += 4;
      f = ref === undefined ? { type: 'react', conv, seq, emoji, on } : { type: 'react', ref, conv, seq, emoji, on };
      break;
    }
    default:
      return undefined;
  }
  let n = 0;
  for (const _ in o) n++;
  return n === keys ? f : undefined;
}

/** zod's `z.uuid()`: RFC 9562 versions 1 to 8 with the RFC variant, or the nil and max UUIDs. */
const UUID =
  /^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}|00000000-0000-0000-0000-000000000000|ffffffff-ffff-ffff-ffff-ffffffffffff)$/;
const MAX_RESUME_CONVS = 10_000;
const MAX_MENTIONS = 50;
/** frames.ts's ceiling of attachments on one message. */
const MAX_ATTACHMENTS = 10;

function isUuid(v: unknown): v is string {
  return typeof v === 'string' && v.length === 36 && UUID.test(v);
}

/** zod measures string lengths in code points: a surrogate pair counts once, a lone surrogate once. */
function codePoints(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    if ((s.charCodeAt(i) & 0xfc00) === 0xd800 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n--;
      i++;
    }
  }
  return n;
}

/** At most `max` code points: `max` units always fit, more than twice `max` never do. */
function fits(s: string, max: number): boolean {
  return s.length <= max || (s.length <= 2 * max && codePoints(s) <= max);
}

/** `z.string().min(1).max(64)`. */
function isRef(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && fits(v, 64);
}

/** frames.ts's `token(max)`: 1 to `max` code points, no NUL, no unpaired surrogate. */
function isText(v: unknown, max: number): v is string {
  return typeof v === 'string' && v.length > 0 && fits(v, max) && !v.includes('\u0000') && v.isWellFormed();
}

/**
 * frames.ts's `body`: 1 to 100,000 code points of multi-line text, line ends normalised, something
 * visible; the body zod returns, or undefined. A printable ASCII first character is visible.
 */
function bodyOf(v: unknown): string | undefined {
  if (typeof v !== 'string' || v.length === 0 || !fits(v, 100_000) || !isMultiLine(v)) return undefined;
  const c = v.charCodeAt(0);
  return (c > 0x20 && c < 0x7f) || hasVisible(v) ? normaliseLines(v) : undefined;
}

/** frames.ts's `emoji`: 1 to 32 code points of single-line text with something visible. */
function isEmoji(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && fits(v, 32) && isSingleLine(v) && hasVisible(v);
}

/** `z.number().int().min(1).max(Number.MAX_SAFE_INTEGER)`. */
function isSeq(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 1;
}

/** The same from 0 (and so -0, which zod keeps as it is). */
function isCursor(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

/** `z.array(z.uuid()).max(50)` as a fresh array, or null. */
function uuids(v: unknown, max = MAX_MENTIONS): string[] | null {
  if (!Array.isArray(v) || v.length > max) return null;
  const out = new Array<string>(v.length);
  for (let i = 0; i < v.length; i++) {
    const id: unknown = v[i];
    if (!isUuid(id)) return null;
    out[i] = id;
  }
  return out;
}

/**
 * `z.record(z.uuid(), cursor)` with at most 10,000 keys, or undefined. zod builds a fresh object;
 * a plain object that already holds exactly what that one would is returned as it is (the frame
 * JSON.parse made is the socket handler's alone), which spares building an object of up to
 * 10,000 new keys. zod skips an own `__proto__` key of a record (it would replace the result's
 * prototype), so such an object is copied without it, as is one without a prototype. Anything
 * else (another prototype, symbol keys) goes to zod.
 */
function cursors(v: unknown): Record<string, number> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const proto: unknown = Object.getPrototypeOf(v);
  if ((proto !== Object.prototype && proto !== null) || Object.getOwnPropertySymbols(v).length > 0) return undefined;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  let copy = proto === null;
  for (const key of keys) {
    if (key === '__proto__') copy = true;
    else if (!isUuid(key) || !isCursor(o[key])) return undefined;
  }
  if (!copy) return keys.length <= MAX_RESUME_CONVS ? (o as Record<string, number>) : undefined;
  const out: Record<string, number> = {};
  let n = 0;
  for (const key of keys) {
    if (key === '__proto__') continue;
    out[key] = o[key] as number;
    n++;
  }
  return n <= MAX_RESUME_CONVS ? out : undefined;
}
