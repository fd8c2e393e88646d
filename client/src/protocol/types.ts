import type { ProtocolErrorCode } from './codes.ts';

/**
 * Hubbub WebSocket protocol v1: the frame types shared by the hub and the client SDK, with no
 * runtime dependency (the zod schemas the hub validates client frames with are in frames.ts).
 * Frames are JSON text objects with a `type`. A client frame may carry `ref` (≤ 64 chars),
 * echoed on its reply.
 */
export const PROTOCOL = 'hubbub.v1';

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
  /** Files sent with the message (absent: none; removed when the message is deleted). */
  attachments?: AttachmentMeta[];
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

/**
 * A file as a message event carries it. Its bytes are fetched with `attachments.get {id}`, which
 * answers with short-lived links for members of the conversation.
 */
export interface AttachmentMeta {
  /** Unguessable id (a random UUID). */
  id: string;
  name: string;
  /** Bytes. */
  size: number;
  /** The declared type, checked against the file's bytes when its upload completed. */
  contentType: string;
  /** Images: pixel dimensions, and a tiny blurred `data:` URL to show until the thumbnail loads. */
  width?: number;
  height?: number;
  preview?: string;
}

export interface ConversationSummary {
  id: string;
  kind: 'direct' | 'group';
  title: string | null;
  topic: string | null;
  members: { userId: string; role: 'owner' | 'admin' | 'member' }[];
  createdAt: string;
}

/**
 * First frame on every socket: who you are, each conversation's last seq, and the epoch of each
 * conversation's log. A seq means something only within its epoch: a restore from backup (or any
 * rewind) gives the log a new epoch and issues the seqs after the recovery point again.
 */
export interface ReadyFrame {
  type: 'ready';
  user: { id: string; username: string; displayName: string };
  session: string;
  convs: Record<string, number>;
  /** Each conversation's log epoch (1 until its log is first rewound). Send it back in `resume`. */
  epochs: Record<string, number>;
  heartbeatMs: number;
}
/** A `send` stored: its seq and id (the same ack again for a retried cid). */
export interface AckFrame {
  type: 'ack';
  ref?: string;
  conv: string;
  cid: string;
  seq: number;
  id: string;
  ts: number;
}
/** An `edit`, `delete` or `react` stored as the event `seq`. */
export interface OkFrame {
  type: 'ok';
  ref?: string;
  conv: string;
  seq: number;
}
/** A refused frame (with the `ref` of the request), or a problem with no request. */
export interface ErrorFrame {
  type: 'error';
  ref?: string;
  code: ProtocolErrorCode;
  message: string;
}
/** A member's read cursor moved (yours too, from another device). */
export interface ReadFrame {
  type: 'read';
  conv: string;
  user: string;
  seq: number;
}
/** Someone is typing (sent at most every few seconds while they type). */
export interface TypingFrame {
  type: 'typing';
  conv: string;
  user: string;
}
/** A contact came online or went offline (all their devices, on every replica). */
export interface PresenceFrame {
  type: 'presence';
  user: string;
  status: 'online' | 'offline';
  lastSeen?: number;
}
/** You were added to or removed from a conversation, or it changed (title, members). */
export interface ConversationFrame {
  type: 'conversation';
  op: 'added' | 'removed' | 'updated';
  conversation: ConversationSummary;
}
/** The answer to `resume`: each conversation's last seq and epoch, and your read cursors. */
export interface ResumedFrame {
  type: 'resumed';
  ref?: string;
  convs: Record<string, number>;
  epochs: Record<string, number>;
  cursors: Record<string, number>;
}
/**
 * A `resume` named a position from another epoch of this conversation's log: the log was
 * restored from a backup (or otherwise rewound) since, and the seqs after `restoredSeq` were
 * issued again with other content. The position is void: drop what you hold of the
 * conversation; the hub then sends its events from seq 1 (a `gap` first when there are more than
 * a resume replays) in the new epoch. Sends of yours acked in the old epoch above `restoredSeq`
 * were lost (send them again, with a new cid, if they still matter).
 */
export interface RewoundFrame {
  type: 'rewound';
  ref?: string;
  conv: string;
  /** The log's current epoch. */
  epoch: number;
  /** The log's head now. */
  seq: number;
  /** The head the rewind left: seqs up to it are the same events as before it. Absent: not known (take none as kept). */
  restoredSeq?: number;
}
/** More events were missed than a resume replays: page `fromSeq`..`toSeq` with `conversations.history`. */
export interface GapFrame {
  type: 'gap';
  conv: string;
  fromSeq: number;
  toSeq: number;
}
export interface PongFrame {
  type: 'pong';
  ref?: string;
}
/** The user's real-time limits changed (plan bought, renewed, expired); they apply at once. */
export interface LimitsFrame {
  type: 'limits';
  plan: string;
  until: string | null;
  limits: RealtimeLimits;
}

export type ServerFrame =
  | ReadyFrame
  | AckFrame
  | OkFrame
  | ErrorFrame
  | EventFrame
  | ReadFrame
  | TypingFrame
  | PresenceFrame
  | ConversationFrame
  | ResumedFrame
  | RewoundFrame
  | GapFrame
  | PongFrame
  | LimitsFrame;

/** A plan's limits as clients see them (`limits` frame, `payments.plans`, `payments.entitlements`). */
export interface RealtimeLimits {
  sendRatePerS: number;
  sendBurst: number;
  connectionsPerUser: number;
  groupMembers: number;
  historyDepth: number;
  /** Largest attachment, in bytes. */
  maxFileBytes: number;
  /** Bytes of attachments the user may keep stored at once. */
  storageBytes: number;
}

export type ServerFrameType = ServerFrame['type'];

/** The server frame of one `type`: `FrameOf<'presence'>` is `PresenceFrame`. */
export type FrameOf<T extends ServerFrameType> = Extract<ServerFrame, { type: T }>;

/**
 * Client frames, as the hub accepts them (it validates each with its own schema). `ref` is
 * optional on all; the reply to a frame carries it.
 */
export type ClientFrame =
  /** `body` may be left out when the message carries attachments (ids from `attachments.create`, completed). */
  | { type: 'send'; ref?: string; conv: string; cid: string; body?: string; replyTo?: number; mentions?: string[]; attachments?: string[] }
  | { type: 'edit'; ref?: string; conv: string; seq: number; body: string; mentions?: string[] }
  | { type: 'delete'; ref?: string; conv: string; seq: number }
  | { type: 'react'; ref?: string; conv: string; seq: number; emoji: string; on: boolean }
  | { type: 'read'; ref?: string; conv: string; seq: number }
  | { type: 'typing'; ref?: string; conv: string }
  | { type: 'resume'; ref?: string; convs: Record<string, number>; epochs?: Record<string, number> }
  | { type: 'ping'; ref?: string };
