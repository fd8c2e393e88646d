import type { Pending } from './types.ts';

/**
 * Sends not yet acked, per user, in localStorage: closing the page before the ack loses none
 * (the next load sends them again with their cids), and a refused one keeps its text to edit.
 */
const key = (userId: string) => `hubbub.outbox.${userId}`;

export function loadOutbox(userId: string): Pending[] {
  try {
    const list = JSON.parse(localStorage.getItem(key(userId)) ?? '[]') as Pending[];
    return Array.isArray(list)
      ? list.filter(
          (p) =>
            typeof p.cid === 'string' &&
            typeof p.conv === 'string' &&
            typeof p.body === 'string' &&
            (p.attachments === undefined || (Array.isArray(p.attachments) && p.attachments.every((a) => typeof a?.id === 'string'))),
        )
      : [];
  } catch {
    // Unreadable (written by hand, or by an older page): nothing to send.
    return [];
  }
}

export function saveOutbox(userId: string, pending: Pending[]) {
  const open = pending.map(({ cid, conv, body, attachments, ts, error, retryable }) => ({
    cid,
    conv,
    body,
    ...(attachments ? { attachments } : {}),
    ts,
    ...(error ? { error, retryable } : {}),
  }));
  if (open.length) localStorage.setItem(key(userId), JSON.stringify(open));
  else localStorage.removeItem(key(userId));
}

/** Text typed and not sent, per user and conversation: it survives switching conversations and reloads. */
const draftKey = (userId: string, conv: string) => `hubbub.draft.${userId}.${conv}`;

export function loadDraft(userId: string, conv: string): string {
  return localStorage.getItem(draftKey(userId, conv)) ?? '';
}

export function saveDraft(userId: string, conv: string, text: string) {
  if (text) localStorage.setItem(draftKey(userId, conv), text);
  else localStorage.removeItem(draftKey(userId, conv));
}
