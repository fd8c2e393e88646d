import { type AttachmentMeta, HubbubError, type EventFrame, type SocketClient } from '@hubbub/client';
import { loadOutbox, saveOutbox } from './outbox-store.ts';
import type { Pending } from './types.ts';
import { errorSentence, MAX_BODY_CHARS, w } from './words.ts';

/** Codes after which sending the same text again cannot succeed. */
const FINAL = ['PAYLOAD_TOO_LARGE', 'BAD_REQUEST', 'FORBIDDEN', 'NOT_FOUND'];

/**
 * The page's sends until the conversation shows them: shown as pending at once, queued while
 * offline, retried by the SDK with the same cid, and kept in localStorage until acked so closing
 * the page loses none. A refused one keeps its text and reason, to edit or discard.
 */
export class Outbox {
  private pending = new Map<string, Pending>();

  constructor(private readonly d: { socket: SocketClient; userId: () => string; changed: () => void }) {}

  /**
   * Sends that were never acked before the page closed go out again, with their cids: the hub
   * stores each cid once, so one that did arrive is not stored twice. Refused ones stay, to edit.
   */
  restore(known: (conv: string) => boolean) {
    for (const p of loadOutbox(this.d.userId())) {
      if (!known(p.conv) || this.pending.has(p.cid)) continue;
      this.pending.set(p.cid, p);
      if (!p.error) this.dispatch(p);
    }
  }

  /**
   * Returns why the message cannot be sent, or null once it is on its way. Files (uploaded and
   * completed) go the same way as text: shown pending, kept across reloads, retried with their cid.
   */
  send(conv: string, body: string, attachments?: AttachmentMeta[]): string | null {
    if (!body.trim() && !attachments?.length) return w.typeFirst;
    if (body.length > MAX_BODY_CHARS) return w.charsOver(body.length - MAX_BODY_CHARS);
    const p: Pending = { cid: crypto.randomUUID(), conv, body, ts: Date.now() };
    if (attachments?.length) p.attachments = attachments;
    this.pending.set(p.cid, p);
    this.dispatch(p);
    this.d.changed();
    return null;
  }

  retry(cid: string) {
    const p = this.pending.get(cid);
    if (!p) return;
    delete p.error;
    delete p.retryable;
    this.dispatch(p);
    this.d.changed();
  }

  /** Takes a refused send back (to edit in the composer, or to drop): its text is returned. */
  takeBack(cid: string): string {
    const p = this.pending.get(cid);
    if (!p) return '';
    this.pending.delete(cid);
    this.save();
    this.d.changed();
    return p.body;
  }

  /** Pending sends of a conversation not yet shown as events (those shown are forgotten here). */
  pendingOf(conv: string, events: Map<number, EventFrame> | undefined) {
    const me = this.d.userId();
    const out: Pending[] = [];
    for (const p of this.pending.values()) {
      if (p.conv !== conv) continue;
      const delivered =
        (p.ackSeq !== undefined && events?.has(p.ackSeq)) || [...(events?.values() ?? [])].some((e) => e.cid === p.cid && e.from === me);
      if (delivered) this.pending.delete(p.cid);
      else out.push(p);
    }
    return out;
  }

  private save() {
    saveOutbox(
      this.d.userId(),
      [...this.pending.values()].filter((p) => p.ackSeq === undefined),
    );
  }

  private dispatch(p: Pending) {
    this.save();
    const attachments = p.attachments?.map((a) => a.id);
    this.d.socket.send(p.conv, p.body, attachments ? { cid: p.cid, attachments } : { cid: p.cid }).then(
      (ack) => {
        p.ackSeq = ack.seq;
        this.save();
        this.d.changed();
      },
      (err) => {
        // The client was closed (sign-out, a refused origin): the send stays in the outbox for the next load.
        if (err instanceof HubbubError && err.code === 'CLOSED') return;
        // Refused for good (too long, not a member): kept with its reason, never retried by itself.
        p.error = errorSentence(err);
        p.retryable = !(err instanceof HubbubError && FINAL.includes(err.code));
        this.save();
        this.d.changed();
      },
    );
  }
}
