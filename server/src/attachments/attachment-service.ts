import { randomUUID } from 'node:crypto';
import { and, eq, inArray, sql } from 'drizzle-orm';
import { attachments, members } from '../../../db/schema/index.ts';
import type { Db } from '../db/database.ts';
import { DomainError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { AttachmentMeta } from '../protocol/frames.ts';
import type { BlobStore, SignedRequest } from './blob-store.ts';
import { normaliseType, SNIFF_BYTES, servedAs, THUMBNAIL_TYPES, typeMismatch } from './content-check.ts';
import { LinkTokens } from './link-tokens.ts';
import { blobKeys, eraseAttachments, exportAttachments } from './attachment-data.ts';
import { describeImage } from './thumbnails.ts';

type Row = typeof attachments.$inferSelect;

export interface AttachmentServiceDeps {
  db: Db;
  blobs: BlobStore;
  logger: Logger;
  /** Signs the hub's own file links (a key derived from the JWT secret). */
  secret: string;
  /** The caller's plan: largest file and storage quota, read on each upload so a new plan applies at once. */
  limitsOf(userId: string): Promise<{ maxFileBytes: number; storageBytes: number }>;
  /** `direct`: presigned uploads to the store where it can sign; `hub`: always through the hub. */
  uploads: 'direct' | 'hub';
  uploadTtlS: number;
  linkTtlS: number;
  storeUrlTtlS: number;
  maxPixels: number;
  now?: () => number;
}

/** Most attachments on one message. */
export const MAX_PER_MESSAGE = 10;

/**
 * Files in messages: `create` reserves quota and says where to send the bytes, `complete`
 * checks them (size, magic numbers, image pixels) and makes the thumbnail, the hub's `claim`
 * binds completed ones to a message, `link` gives members a short-lived download link.
 * Refusals delete what was stored.
 */
export class AttachmentService {
  readonly links: LinkTokens;
  private readonly now: () => number;

  constructor(private readonly d: AttachmentServiceDeps) {
    this.now = d.now ?? Date.now;
    this.links = new LinkTokens(d.secret, this.now);
  }

  get blobs() {
    return this.d.blobs;
  }

  async create(userId: string, input: { conversationId: string; name: string; size: number; contentType: string }) {
    const contentType = normaliseType(input.contentType);
    await this.requireMember(input.conversationId, userId);
    const limits = await this.d.limitsOf(userId);
    if (input.size > limits.maxFileBytes) {
      throw new DomainError('PAYLOAD_TOO_LARGE', `file of ${input.size} bytes is over your plan's limit of ${limits.maxFileBytes} bytes`);
    }
    const id = randomUUID();
    // The quota check and the reservation in one transaction, under a lock per user: two
    // uploads at once cannot both fit into the same remaining space.
    await this.d.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`attachments:${userId}`}))`);
      const [{ used }] = (await tx
        .select({ used: sql<string>`coalesce(sum(${attachments.size}), 0)` })
        .from(attachments)
        .where(and(eq(attachments.ownerId, userId), inArray(attachments.state, ['pending', 'ready'])))) as [{ used: string }];
      if (Number(used) + input.size > limits.storageBytes) {
        throw new DomainError(
          'FORBIDDEN',
          `storage quota reached: ${Number(used)} of ${limits.storageBytes} bytes used, this file needs ${input.size}`,
        );
      }
      await tx
        .insert(attachments)
        .values({ id, conversationId: input.conversationId, ownerId: userId, name: input.name, contentType, size: input.size });
    });
    return { id, upload: await this.uploadTarget(id, userId, contentType, input.size) };
  }

  private async uploadTarget(id: string, userId: string, contentType: string, size: number): Promise<SignedRequest> {
    const direct = this.d.uploads === 'direct' ? this.d.blobs.direct : undefined;
    if (direct) return direct.uploadUrl(`${id}/file`, { contentType, size, expiresInS: this.d.uploadTtlS });
    const t = this.links.sign({ k: 'put', a: id, u: userId, e: this.expiry(this.d.uploadTtlS), n: size });
    return { url: `/files/${id}?t=${t}`, method: 'PUT', headers: { 'content-type': contentType } };
  }

  /** The hub's upload route: stores the bytes of a pending attachment the token allows. */
  async receive(id: string, userId: string, bytes: Buffer) {
    const row = await this.row(id);
    if (!row || row.ownerId !== userId || row.state !== 'pending') throw new DomainError('NOT_FOUND', 'no such upload');
    if (bytes.length !== row.size) throw new DomainError('BAD_REQUEST', `expected ${row.size} bytes, got ${bytes.length}`);
    await this.d.blobs.put(`${id}/file`, bytes, row.contentType);
  }

  /**
   * Checks the uploaded bytes and makes the attachment usable. A refusal deletes the bytes and
   * marks the row refused (cleanup removes it once its upload URL has expired).
   */
  async complete(userId: string, id: string): Promise<AttachmentMeta> {
    const row = await this.row(id);
    if (!row || row.ownerId !== userId || row.state === 'refused') throw new DomainError('NOT_FOUND', 'no such attachment');
    if (row.state === 'ready') return metaOf(row);
    const key = `${id}/file`;
    // Size and first bytes in one request: the type check never reads the rest of the file.
    const peeked = await this.d.blobs.peek(key, SNIFF_BYTES);
    if (!peeked) throw new DomainError('PRECONDITION_FAILED', 'the file has not been uploaded yet');
    try {
      const { size, head } = peeked;
      if (size !== row.size) throw new DomainError('BAD_REQUEST', `expected ${row.size} bytes, the upload has ${size}`);
      const mismatch = await typeMismatch(row.contentType, head);
      if (mismatch) throw new DomainError('BAD_REQUEST', `declared type refused: ${mismatch}`);
      const patch: Partial<Row> = { state: 'ready' };
      if (THUMBNAIL_TYPES.has(row.contentType)) {
        const image = await describeImage((await this.d.blobs.read(key))!, { maxPixels: this.d.maxPixels });
        await this.d.blobs.put(`${id}/thumb`, image.thumb, 'image/webp');
        Object.assign(patch, { width: image.width, height: image.height, preview: image.preview, hasThumb: 1 });
      }
      const [done] = await this.d.db
        .update(attachments)
        .set(patch)
        .where(and(eq(attachments.id, id), eq(attachments.state, 'pending')))
        .returning();
      if (!done) throw new DomainError('NOT_FOUND', 'the upload expired before it was completed');
      return metaOf(done);
    } catch (err) {
      await this.refuse(id);
      throw err;
    }
  }

  private async refuse(id: string) {
    await this.d.db.update(attachments).set({ state: 'refused' }).where(eq(attachments.id, id));
    await this.d.blobs.delete(blobKeys(id));
  }

  /**
   * Binds completed attachments to the message `cid` the caller is sending in `conv`, and
   * returns what the event carries. Only the uploader's own, ready attachments made for this
   * conversation, not already on another message; the same cid again (a retried send) is fine.
   */
  async claim(userId: string, conv: string, cid: string, ids: string[]): Promise<AttachmentMeta[]> {
    if (new Set(ids).size !== ids.length) throw new DomainError('BAD_REQUEST', 'an attachment is listed twice');
    return this.d.db.transaction(async (tx) => {
      const rows = await tx.select().from(attachments).where(inArray(attachments.id, ids)).for('update');
      const byId = new Map(rows.map((r) => [r.id, r]));
      for (const id of ids) {
        const r = byId.get(id);
        if (!r || r.ownerId !== userId) throw new DomainError('NOT_FOUND', `no attachment ${id} of yours`);
        if (r.conversationId !== conv) throw new DomainError('FORBIDDEN', `attachment ${id} was made for another conversation`);
        if (r.state !== 'ready') throw new DomainError('PRECONDITION_FAILED', `attachment ${id} is not complete`);
        if (r.messageCid !== null && r.messageCid !== cid)
          throw new DomainError('CONFLICT', `attachment ${id} is already on another message`);
      }
      await tx.update(attachments).set({ messageCid: cid }).where(inArray(attachments.id, ids));
      return ids.map((id) => metaOf(byId.get(id)!));
    });
  }

  /** `attachments.get`: the attachment and a short-lived link, for members of its conversation. */
  async get(userId: string, id: string) {
    const row = await this.readable(userId, id);
    const e = this.expiry(this.d.linkTtlS);
    const link = (v: 'file' | 'thumb') => `/files/${id}?t=${this.links.sign({ k: 'get', a: id, u: userId, e, v })}`;
    return {
      ...metaOf(row),
      url: link('file'),
      ...(row.hasThumb ? { thumbnailUrl: link('thumb') } : {}),
      expiresAt: new Date(e * 1000).toISOString(),
    };
  }

  /**
   * A ready attachment the user may read now: their own, or one sent in a conversation they
   * are a member of at this moment. Anything else is NOT_FOUND (its existence is not told).
   */
  async readable(userId: string, id: string): Promise<Row> {
    const row = await this.row(id);
    if (row?.state !== 'ready') throw new DomainError('NOT_FOUND', 'no such attachment');
    if (row.ownerId === userId) return row;
    if (row.messageCid === null || !(await this.isMember(row.conversationId, userId))) {
      throw new DomainError('NOT_FOUND', 'no such attachment');
    }
    return row;
  }

  /** Where the hub sends a reader: the store's own signed URL (S3), or null to stream it itself. */
  async storeUrl(row: Row, variant: 'file' | 'thumb'): Promise<string | null> {
    const direct = this.d.blobs.direct;
    if (!direct) return null;
    return direct.downloadUrl(`${row.id}/${variant}`, { ...servedAs(row.contentType, row.name, variant), expiresInS: this.d.storeUrlTtlS });
  }

  /** Deletes attachments and their bytes (a message deleted). */
  async discard(ids: string[]) {
    if (!ids.length) return;
    await this.d.db.delete(attachments).where(inArray(attachments.id, ids));
    await this.d.blobs.delete(ids.flatMap(blobKeys));
  }

  /** `account.export`: the user's files, each with a link valid for the link lifetime. */
  exportOf(userId: string) {
    return exportAttachments(this.d.db, userId, async (id) => {
      const { url, expiresAt } = await this.get(userId, id);
      return { url, expiresAt };
    });
  }

  /** `account.delete`: every file the user uploaded, rows and bytes. */
  erase(userId: string) {
    return eraseAttachments(this.d.db, this.d.blobs, userId);
  }

  private async requireMember(conv: string, userId: string) {
    if (!(await this.isMember(conv, userId))) throw new DomainError('FORBIDDEN', 'not a member of this conversation');
  }

  private async isMember(conv: string, userId: string) {
    const rows = await this.d.db
      .select({ u: members.userId })
      .from(members)
      .where(and(eq(members.conversationId, conv), eq(members.userId, userId)));
    return rows.length > 0;
  }

  private async row(id: string): Promise<Row | undefined> {
    const [row] = await this.d.db.select().from(attachments).where(eq(attachments.id, id));
    return row;
  }

  private expiry(ttlS: number) {
    return Math.floor(this.now() / 1000) + ttlS;
  }
}

/** What a message event carries of an attachment. */
export function metaOf(r: Row): AttachmentMeta {
  const m: AttachmentMeta = { id: r.id, name: r.name, size: r.size, contentType: r.contentType };
  if (r.width != null && r.height != null) Object.assign(m, { width: r.width, height: r.height });
  if (r.preview) m.preview = r.preview;
  return m;
}
