import { z } from 'zod';
import { hasVisible, isMultiLine, isSingleLine, MULTI_LINE_MESSAGE, normaliseLines, SINGLE_LINE_MESSAGE } from './text.ts';

/**
 * Hubbub WebSocket protocol v1: the zod schemas of client frames, which the hub validates with.
 * The frame types (and the server frames) live in the client SDK (`@hubbub/client/protocol`),
 * which imports no zod, so its browser bundle stays small; they are re-exported here for the
 * server's imports.
 */
export { PROTOCOL } from '@hubbub/client/protocol';
export type {
  AttachmentMeta,
  ConversationSummary,
  EventFrame,
  EventKind,
  RealtimeLimits,
  ServerFrame,
  ServerFrameType,
} from '@hubbub/client/protocol';

const ref = z.string().min(1).max(64);
const convId = z.uuid();
const seq = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const cursor = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/**
 * An identifier the client makes up (`cid`), never shown to anyone: only what the stores can
 * hold (JSON escapes can carry NUL and unpaired surrogates, which PostgreSQL refuses).
 */
const token = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .refine((s) => !s.includes('\u0000') && s.isWellFormed(), 'must not contain NUL or unpaired surrogates');

/**
 * A message body, for `send` and `edit` alike: multi-line user-visible text (text.ts), line
 * ends as LF, not blank. Its length limit is applied by the hub from its config; this is the
 * wire-level ceiling.
 */
const body = z
  .string()
  .min(1)
  .max(100_000)
  .refine(isMultiLine, MULTI_LINE_MESSAGE)
  .transform(normaliseLines)
  .refine(hasVisible, 'body is blank');

/** A reaction: single-line user-visible text (text.ts) that shows something. */
const emoji = z.string().min(1).max(32).refine(isSingleLine, SINGLE_LINE_MESSAGE).refine(hasVisible, 'emoji is blank');

/**
 * Body length limits are applied by the hub from its config; this is the wire-level ceiling.
 * The body may be absent on a message with attachments (the hub refuses one with neither).
 */
export const sendFrame = z.strictObject({
  type: z.literal('send'),
  ref: ref.optional(),
  conv: convId,
  cid: token(64),
  body: body.optional(),
  replyTo: seq.optional(),
  mentions: z.array(z.uuid()).max(50).optional(),
  attachments: z.array(z.uuid()).min(1).max(10).optional(),
});
export const editFrame = z.strictObject({
  type: z.literal('edit'),
  ref: ref.optional(),
  conv: convId,
  seq,
  body,
  /** Users the new text mentions: an edit that adds a mention notifies them. */
  mentions: z.array(z.uuid()).max(50).optional(),
});
export const deleteFrame = z.strictObject({ type: z.literal('delete'), ref: ref.optional(), conv: convId, seq });
export const reactFrame = z.strictObject({
  type: z.literal('react'),
  ref: ref.optional(),
  conv: convId,
  seq,
  emoji,
  on: z.boolean(),
});
export const readFrame = z.strictObject({ type: z.literal('read'), ref: ref.optional(), conv: convId, seq: cursor });
export const typingFrame = z.strictObject({ type: z.literal('typing'), ref: ref.optional(), conv: convId });
export const resumeFrame = z.strictObject({
  type: z.literal('resume'),
  ref: ref.optional(),
  convs: z.record(convId, cursor).refine((o) => Object.keys(o).length <= 10_000, 'too many conversations'),
  /** The log epoch each position was taken in (from `ready`, `resumed`, `rewound` or history); absent: not claimed. */
  epochs: z
    .record(convId, z.number().int().min(1).max(Number.MAX_SAFE_INTEGER))
    .refine((o) => Object.keys(o).length <= 10_000, 'too many conversations')
    .optional(),
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
