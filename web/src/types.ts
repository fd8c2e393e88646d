import type { AttachmentMeta, EventFrame } from '@hubbub/client';

/** The page's records: people, conversations as the list shows them, sends not yet stored. */

export interface Profile {
  id: string;
  username: string;
  displayName: string;
  avatarUrl: string | null;
}

export interface Conv {
  id: string;
  kind: 'direct' | 'group';
  title: string | null;
  role: 'owner' | 'admin' | 'member';
  members: { userId: string; role: 'owner' | 'admin' | 'member' }[];
  lastSeq: number;
  readSeq: number;
  /** Messages from others after the read cursor (not edits, reactions or member notes). */
  unread: number;
  /** More unread than one page of history holds: `unread` is a lower bound. */
  unreadMore?: boolean;
  muted: boolean;
  lastMessage: EventFrame | null;
  createdAt: string;
}

export interface Pending {
  cid: string;
  conv: string;
  body: string;
  /** Uploaded and completed files the message carries (their ids go in the send). */
  attachments?: AttachmentMeta[];
  ts: number;
  ackSeq?: number;
  /** Refused for good, in words: the text stays, to edit and send again or discard. */
  error?: string;
  /** Whether sending it again as it is could succeed (a refusal for its length could not). */
  retryable?: boolean;
}

/** `refused`: the server does not accept this page's origin, so the socket cannot connect. */
export type Connection = 'connecting' | 'live' | 'reconnecting' | 'refused';
