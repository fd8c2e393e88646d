/**
 * What the hub needs from the rest of the system, as narrow interfaces, so the hot path imports
 * no database or tRPC code (STYLE habit 3). The composition root wires them to the services.
 */

export interface SocketUser {
  id: string;
  sessionId: string;
}

export interface Authenticator {
  /** Throws on an invalid token or a revoked session. */
  authenticate(token: string): Promise<SocketUser>;
}

export interface MembershipDirectory {
  /** Conversation ids the user belongs to. */
  conversationsOf(userId: string): Promise<string[]>;
  /** Moves the read cursor forward; returns the new cursor, or null when it did not move. */
  markRead(conv: string, userId: string, seq: number): Promise<number | null>;
  /** The user's read cursor per conversation. */
  readCursors(userId: string, convs: string[]): Promise<Record<string, number>>;
  /** Users who share a conversation with this user (at most `limit`), for the presence snapshot. */
  contactsOf(userId: string, limit: number): Promise<string[]>;
  /** Public identity for the ready frame. */
  userInfo(userId: string): Promise<{ id: string; username: string; displayName: string }>;
}

/** Control messages on a user's bus channel. */
export type UserControl =
  | { k: 'added'; conv: string; fromSeq: number; frame: string }
  | { k: 'removed'; conv: string; frame: string }
  | { k: 'revoke'; sessions: string[] | 'all' }
  | { k: 'frame'; frame: string };
