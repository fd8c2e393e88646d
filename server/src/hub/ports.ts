import type { AttachmentMeta } from '@hubbub/client/protocol';
import type { ConversationSummary } from '../protocol/frames.ts';

/**
 * What the hub needs from the rest of the system, as narrow interfaces, so the hot path imports
 * no database or tRPC code (STYLE habit 3). The composition root wires them to the services.
 */

export interface SocketUser {
  id: string;
  sessionId: string;
}

/** Public identity for the ready frame. */
export interface UserInfo {
  id: string;
  username: string;
  displayName: string;
}

/** Everything a new socket starts from, read in one round trip at the upgrade. */
export interface SocketLogin {
  user: SocketUser;
  info: UserInfo;
  /** The conversations the user belongs to. */
  convs: string[];
  /** Users who share a conversation with this user (at most the limit asked), for the presence snapshot. */
  contacts: string[];
  /**
   * The user's subscription row as the login statement read it (null: none), when the
   * authenticator reads it there: the socket's limits then cost no query of their own.
   */
  subscription?: LoginSubscription | null;
  /** The user's direct conversations where one of the two blocked the other (absent: none). */
  blocked?: Record<string, DirectBlock>;
}

/**
 * A block on a direct conversation, as one of its two members sees it: `mine` when this user
 * blocked the other (whatever the other did), `theirs` when only the other blocked them.
 * Either way nobody sends new messages in it.
 */
export type DirectBlock = 'mine' | 'theirs';

export interface LoginSubscription {
  planId: string;
  /** End of the paid period, ms since the epoch. */
  periodEnd: number;
}

/**
 * Auth at the upgrade, in two steps so that the hub can watch the user's control channel in
 * between: whatever changes after `login` read the database (a revoked session, a conversation
 * added or removed) then reaches the socket.
 */
export interface Authenticator {
  /** Checks an access token's signature and claims, without I/O. Throws on an invalid token. */
  verify(token: string): Promise<SocketUser>;
  /**
   * Checks that the session is live and reads the user's identity, conversation ids and up to
   * `contactsMax` contacts, in one statement. Throws on a revoked session or
   * a deleted user.
   */
  login(user: SocketUser, contactsMax: number): Promise<SocketLogin>;
}

export interface MembershipDirectory {
  /** Conversation ids the user belongs to. */
  conversationsOf(userId: string): Promise<string[]>;
  /** Moves the read cursor forward; returns the new cursor, or null when it did not move. */
  markRead(conv: string, userId: string, seq: number): Promise<number | null>;
  /** The user's read cursor per conversation. */
  readCursors(userId: string, convs: string[]): Promise<Record<string, number>>;
  /**
   * Which of these conversations the user belongs to now, read from the database (the
   * authority): asked when a socket names a conversation it does not know, before refusing.
   * With each, its block when it is a blocked direct conversation.
   */
  access(userId: string, convs: string[]): Promise<Map<string, { blocked?: DirectBlock }>>;
  /** Which of the user's sessions are still live (not revoked, user not erased): for a revocation the bus lost. */
  liveSessions(userId: string, sessionIds: string[]): Promise<Set<string>>;
  /** The conversation as a `conversation` frame carries it (for a removal the bus lost). */
  summary(conv: string): Promise<ConversationSummary>;
}

/**
 * Control messages for users' sockets. `added`, `removed` and `block` change what a socket may
 * do and go out confirmed (Hub.controlUsers: the mutation answers once every hub applied them);
 * the others go on the user's own channel.
 */
export type UserControl =
  | { k: 'added'; conv: string; fromSeq: number; frame: string }
  | { k: 'removed'; conv: string; frame: string }
  /**
   * The block state of two users changed: `blockers` are those of the two who now block the
   * other (empty: unblocked), `conv` their direct conversation if they have one, `shared` every
   * conversation they share (the notification trigger reads who blocks whom per conversation).
   */
  | { k: 'block'; blockers: string[]; conv: string | null; shared: string[] }
  | { k: 'revoke'; sessions: string[] | 'all' }
  | { k: 'frame'; frame: string }
  /** The user's plan changed: new limits for every socket, and the `limits` frame to send them. */
  | { k: 'limits'; limits: SocketLimits; frame: string };

/** A user's real-time limits on sockets (set by their plan). */
export interface SocketLimits {
  ratePerS: number;
  burst: number;
  /** Open sockets per user on one replica. */
  maxConnections: number;
}

/** Where a new socket's limits come from (the user's plan); the hub's defaults when absent. */
export interface LimitsDirectory {
  limitsOf(userId: string): Promise<SocketLimits>;
  /** The same from the subscription the login statement read (no query). */
  limitsOfSubscription?(sub: LoginSubscription | null): SocketLimits;
}

/** Attachments as the hub sees them: bound to the message that carries them, dropped with it. */
export interface AttachmentClaims {
  /**
   * Binds the sender's completed attachments, made for this conversation, to the message `cid`
   * and returns what the event carries. Throws a DomainError naming the one that does not qualify.
   */
  claim(userId: string, conv: string, cid: string, ids: string[]): Promise<AttachmentMeta[]>;
  /** Deletes attachments and their bytes (their message was deleted). */
  discard(ids: string[]): Promise<void>;
}
