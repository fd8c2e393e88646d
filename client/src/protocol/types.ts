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
  | { type: 'pong'; ref?: string }
  /** The user's real-time limits changed (plan bought, renewed, expired); they apply at once. */
  | { type: 'limits'; plan: string; until: string | null; limits: RealtimeLimits };

/** A plan's limits as clients see them (`limits` frame, `payments.plans`, `payments.entitlements`). */
export interface RealtimeLimits {
  sendRatePerS: number;
  sendBurst: number;
  connectionsPerUser: number;
  groupMembers: number;
  historyDepth: number;
}

export type ServerFrameType = ServerFrame['type'];
