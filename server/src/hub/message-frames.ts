import { randomUUID } from 'node:crypto';
import { now } from '../observability/send-stages.ts';
import { DomainError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { ClientFrame } from '../protocol/frames.ts';
import type { MessageStore } from '../store/message-store.ts';
import type { Connection } from './connection.ts';
import type { EventWriter } from './event-writer.ts';
import type { AttachmentClaims, MembershipDirectory, UserControl } from './ports.ts';
import { isMember, isWritable, replyError, replyFailure } from './replies.ts';
import { encode } from './wire.ts';

type FrameOf<T extends ClientFrame['type']> = Extract<ClientFrame, { type: T }>;

/**
 * The client frames that write to a conversation: `send`, `edit`, `delete`, `react`, and the
 * ephemeral `read` and `typing`. Each runs on a socket whose membership is settled.
 */
export class MessageFrames {
  constructor(
    private readonly d: {
      store: MessageStore;
      writer: EventWriter;
      directory: MembershipDirectory;
      logger: Logger;
      maxBodyChars: number;
      /** The highest seq delivered here for the conversation (a read cursor never passes it). */
      deliveredHead(conv: string): number | undefined;
      publishFrame(conv: string, frame: string, skipUser?: string): Promise<void>;
      controlUser(userId: string, msg: UserControl): Promise<void>;
      /** Files on messages; without it a `send` with attachments is refused. */
      attachments?: AttachmentClaims;
    },
  ) {}

  /** Per socket, its latest send still binding attachments: later sends wait behind it. */
  private claiming = new WeakMap<Connection, Promise<void>>();

  /** Order-sensitive: the write is enqueued synchronously, in the order the frames arrived. */
  send(conn: Connection, f: FrameOf<'send'>) {
    if (!isWritable(conn, f.conv, f.ref)) return;
    if (f.body === undefined && !f.attachments) return replyError(conn, f.ref, 'BAD_REQUEST', 'a message needs a body or attachments');
    if (f.body !== undefined && f.body.length > this.d.maxBodyChars) {
      return replyError(conn, f.ref, 'PAYLOAD_TOO_LARGE', `body over ${this.d.maxBodyChars} characters`);
    }
    const data: Record<string, unknown> = { body: f.body ?? '' };
    if (f.replyTo !== undefined) data.replyTo = f.replyTo;
    if (f.mentions?.length) data.mentions = f.mentions;
    if (f.attachments) return this.sendWithAttachments(conn, f, data, f.attachments);
    const prior = this.claiming.get(conn);
    // Behind a send still binding its attachments: the socket's messages keep their order.
    if (prior) return void prior.then(() => this.write(conn, f, data));
    this.write(conn, f, data);
  }

  /**
   * Binds the attachments (a database round trip) before the write; the socket's later sends
   * wait behind it, so they are stored in the order they were sent.
   */
  private sendWithAttachments(conn: Connection, f: FrameOf<'send'>, data: Record<string, unknown>, ids: string[]) {
    const claims = this.d.attachments;
    if (!claims) return replyError(conn, f.ref, 'BAD_REQUEST', 'attachments are not enabled');
    const prior = this.claiming.get(conn) ?? Promise.resolve();
    const done: Promise<void> = prior
      .then(() => claims.claim(conn.user.id, f.conv, f.cid, ids))
      .then(
        (metas) => this.write(conn, f, { ...data, attachments: metas }),
        (err) => replyFailure(this.d.logger, conn, f.ref, err),
      )
      .finally(() => {
        if (this.claiming.get(conn) === done) this.claiming.delete(conn);
      });
    this.claiming.set(conn, done);
  }

  private write(conn: Connection, f: FrameOf<'send'>, data: Record<string, unknown>) {
    if (conn.closed) return;
    const acceptedAt = now();
    this.d.writer
      .write(f.conv, { id: randomUUID(), kind: 'message', from: conn.user.id, ts: Date.now(), cid: f.cid, data }, acceptedAt)
      .then(({ event }) => {
        const ack = { type: 'ack' as const, conv: f.conv, cid: f.cid, seq: event.seq, id: event.id, ts: event.ts };
        conn.send(encode(f.ref ? { ...ack, ref: f.ref } : ack));
        // A sender has read their own message: their cursor moves, and their other devices get a
        // `read` (the other members need no receipt for it), so it never counts as unread for
        // them. A store that moves the cursor in the append's own commit (PostgreSQL) did so, and
        // the `read` travels with the event to the sender's sockets (Feeds.deliver); otherwise
        // it is moved here and sent on the user's channel. The ack is the reply: a failure here
        // is logged.
        if (this.d.store.movesSenderCursor) return;
        this.markRead(conn.user.id, f.conv, event.seq, 'own').catch((err) =>
          this.d.logger.warn({ err: (err as Error).message }, 'own read cursor failed'),
        );
      })
      .catch((err) => replyFailure(this.d.logger, conn, f.ref, err));
  }

  async modify(conn: Connection, f: FrameOf<'edit' | 'delete' | 'react'>) {
    // Deleting one's own message stays possible in a blocked conversation; adding to it does not.
    if (!(f.type === 'delete' ? isMember(conn, f.conv, f.ref) : isWritable(conn, f.conv, f.ref))) return;
    try {
      const [target] = await this.d.store.read(f.conv, { afterSeq: f.seq - 1, limit: 1 });
      if (!target || target.seq !== f.seq || target.kind !== 'message' || target.data.redacted) {
        throw new DomainError('NOT_FOUND', 'no such message');
      }
      if (f.type !== 'react' && target.from !== conn.user.id) {
        throw new DomainError('FORBIDDEN', 'only the author may do that');
      }
      let data: Record<string, unknown>;
      if (f.type === 'edit') {
        if (f.body.length > this.d.maxBodyChars) {
          throw new DomainError('PAYLOAD_TOO_LARGE', `body over ${this.d.maxBodyChars} characters`);
        }
        data = { target: f.seq, body: f.body };
        if (f.mentions?.length) data.mentions = f.mentions;
      } else if (f.type === 'delete') data = { target: f.seq };
      else data = { target: f.seq, emoji: f.emoji, on: f.on };
      const kind = f.type === 'react' ? 'reaction' : f.type;
      const { event } = await this.d.writer.write(f.conv, { id: randomUUID(), kind, from: conn.user.id, ts: Date.now(), data });
      if (f.type === 'delete') {
        await this.d.store.redact(f.conv, [f.seq]);
        const files = target.data.attachments as { id: string }[] | undefined;
        if (files?.length) await this.d.attachments?.discard(files.map((a) => a.id));
      }
      conn.send(encode(f.ref ? { type: 'ok', ref: f.ref, conv: f.conv, seq: event.seq } : { type: 'ok', conv: f.conv, seq: event.seq }));
    } catch (err) {
      replyFailure(this.d.logger, conn, f.ref, err);
    }
  }

  async read(conn: Connection, f: FrameOf<'read'>) {
    if (!isMember(conn, f.conv, f.ref)) return;
    try {
      const seq = Math.min(f.seq, this.d.deliveredHead(f.conv) ?? f.seq);
      await this.markRead(conn.user.id, f.conv, seq);
    } catch (err) {
      replyFailure(this.d.logger, conn, f.ref, err);
    }
  }

  typing(conn: Connection, f: FrameOf<'typing'>) {
    if (!isWritable(conn, f.conv, f.ref)) return;
    this.d
      .publishFrame(f.conv, encode({ type: 'typing', conv: f.conv, user: conn.user.id }), conn.user.id)
      .catch((err) => this.d.logger.warn({ err: (err as Error).message }, 'typing publish failed'));
  }

  /** Moves a read cursor and tells the conversation, or (`own`: after a send) only the user's sockets. */
  private async markRead(userId: string, conv: string, seq: number, to: 'conversation' | 'own' = 'conversation') {
    const moved = await this.d.directory.markRead(conv, userId, seq);
    if (moved == null) return;
    const frame = encode({ type: 'read', conv, user: userId, seq: moved });
    if (to === 'own') await this.d.controlUser(userId, { k: 'frame', frame });
    else await this.d.publishFrame(conv, frame);
  }
}
