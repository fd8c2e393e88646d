import { z } from 'zod';
import type { ProtocolErrorCode } from './codes.ts';

/**
 * Hubbub WebSocket protocol v1: every frame's type and schema, shared by the hub and the client SDK.
 * Frames are JSON text objects with a `type`. A client frame may carry `ref` (≤ 64 chars),
 * echoed on its reply.
 */
export const PROTOCOL = 'hubbub.v1';

const ref = z.string().min(1).max(64);
const convId = z.uuid();
const seq = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const cursor = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** Text the stores can hold: JSON escapes can carry NUL and unpaired surrogates, which PostgreSQL refuses. */
const text = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .refine((s) => !s.includes('\u0000') && s.isWellFormed(), 'must not contain NUL or unpaired surrogates');

/** Body length limits are applied by the hub from its config; this is the wire-level ceiling. */
export const sendFrame = z.strictObject({
  type: z.literal('send'),
  ref: ref.optional(),
  conv: convId,
  cid: text(64),
  body: text(100_000),
  replyTo: seq.optional(),
  mentions: z.array(z.uuid()).max(50).optional(),
});
export const editFrame = z.strictObject({
  type: z.literal('edit'),
  ref: ref.optional(),
  conv: convId,
  seq,
  body: text(100_000),
  /** Users the new text mentions: an edit that adds a mention notifies them. */
  mentions: z.array(z.uuid()).max(50).optional(),
});
export const deleteFrame = z.strictObject({ type: z.literal('delete'), ref: ref.optional(), conv: convId, seq });
export const reactFrame = z.strictObject({
  type: z.literal('react'),
  ref: ref.optional(),
  conv: convId,
  seq,
  emoji: text(32),
  on: z.boolean(),
});
export const readFrame = z.strictObject({ type: z.literal('read'), ref: ref.optional(), conv: convId, seq: cursor });
export const typingFrame = z.strictObject({ type: z.literal('typing'), ref: ref.optional(), conv: convId });
export const resumeFrame = z.strictObject({
  type: z.literal('resume'),
  ref: ref.optional(),
  convs: z.record(convId, cursor).refine((o) => Object.keys(o).length <= 10_000, 'too many conversations'),
});
export const pingFrame = z.strictObject({ type: z.literal('ping'), ref: ref.optional() });

export const clientFrame = z.discriminatedUnion('type', [
  sendFrame,
  editFrame,
  deleteFrame,
  reactFrame,
  readFrame,
  typingFrame,
  resumeFrame,
  pingFrame,
]);
export type ClientFrame = z.infer<typeof clientFrame>;
export type ClientFrameType = ClientFrame['type'];
export const clientFrameTypes = new Set<string>(clientFrame.options.map((o) => o.shape.type.value));

export type EventKind = 'message' | 'edit' | 'delete' | 'reaction' | 'member' | 'system';

/** A conversation event as clients see it: `{conv, seq, kind, id, from, ts, …kind fields}`. */
export interface EventFrame {
  type: 'event';
  conv: string;
  seq: number;
  kind: EventKind;
  id: string;
  from: string | null;
  ts: number;
  cid?: string;
  /** message */
  body?: string | null;
  replyTo?: number;
  mentions?: string[];
  redacted?: boolean;
  /** edit, delete, reaction: the message seq they apply to */
  target?: number;
  emoji?: string;
  on?: boolean;
  /** member */
  op?: 'joined' | 'left' | 'removed';
  users?: string[];
  /** system */
  text?: string;
  [k: string]: unknown;
}

export interface ConversationSummary {
  id: string;
  kind: 'direct' | 'group';
  title: string | null;
  topic: string | null;
  members: { userId: string; role: 'owner' | 'admin' | 'member' }[];
  createdAt: string;
}

export type ServerFrame =
  | {
      type: 'ready';
      user: { id: string; username: string; displayName: string };
      session: string;
      convs: Record<string, number>;
      heartbeatMs: number;
    }
  | { type: 'ack'; ref?: string; conv: string; cid: string; seq: number; id: string; ts: number }
  | { type: 'ok'; ref?: string; conv: string; seq: number }
  | { type: 'error'; ref?: string; code: ProtocolErrorCode; message: string }
  | EventFrame
  | { type: 'read'; conv: string; user: string; seq: number }
  | { type: 'typing'; conv: string; user: string }
  | { type: 'presence'; user: string; status: 'online' | 'offline'; lastSeen?: number }
  | { type: 'conversation'; op: 'added' | 'removed' | 'updated'; conversation: ConversationSummary }
  | { type: 'resumed'; ref?: string; convs: Record<string, number>; cursors: Record<string, number> }
  | { type: 'gap'; conv: string; fromSeq: number; toSeq: number }
  | { type: 'pong'; ref?: string };

export type ServerFrameType = ServerFrame['type'];
