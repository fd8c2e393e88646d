import type { EventFrame } from '@hubbub/client';
import type { Conv } from './types.ts';

/**
 * What the conversation list shows of a conversation. The server's `unread` counts every event
 * after the read cursor (the note that you were added, edits, reactions) and its last message is
 * as first written; a person counts messages from others, and reads the last one as it is now.
 */

/** Sets the unread count and the preview from the newest page of events (oldest first). */
export function countFromTail(c: Conv, events: EventFrame[], me: string) {
  let unread = 0;
  for (const e of events) if (e.seq > c.readSeq && e.kind === 'message' && e.from !== me && !e.redacted) unread++;
  c.unread = unread;
  const oldest = events[0]?.seq ?? c.lastSeq + 1;
  // The page did not reach back to the cursor: there are more than it counted.
  c.unreadMore = oldest > c.readSeq + 1 && oldest > 1;
  for (const e of events) applyToPreview(c, e);
}

/** A new message becomes the preview; an edit or delete of the previewed message changes it. */
export function applyToPreview(c: Conv, e: EventFrame) {
  const last = c.lastMessage;
  if (e.kind === 'message' && (!last || e.seq > last.seq)) c.lastMessage = e;
  if (!last || e.target !== last.seq) return;
  if (e.kind === 'edit' && !last.redacted) c.lastMessage = { ...last, body: e.body ?? last.body ?? null, edited: true };
  if (e.kind === 'delete') c.lastMessage = { ...last, body: null, redacted: true };
}
