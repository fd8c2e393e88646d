import { and, eq, inArray, lt } from 'drizzle-orm';
import { z } from 'zod';
import { attachments } from '../../../db/schema/index.ts';
import type { Db } from '../db/database.ts';
import type { RepeatingJob } from '../jobs/repeating-job.ts';
import type { BlobStore } from './blob-store.ts';

/** Blob keys of an attachment: its file, and its thumbnail for images. */
export const blobKeys = (id: string) => [`${id}/file`, `${id}/thumb`];

/** The caller's files for `account.export`: each with a short-lived link to its bytes. */
export async function exportAttachments(db: Db, userId: string, link: (id: string) => Promise<{ url: string; expiresAt: string }>) {
  const rows = await db
    .select({
      id: attachments.id,
      conversationId: attachments.conversationId,
      name: attachments.name,
      size: attachments.size,
      contentType: attachments.contentType,
      createdAt: attachments.createdAt,
    })
    .from(attachments)
    .where(and(eq(attachments.ownerId, userId), eq(attachments.state, 'ready')));
  return Promise.all(rows.map(async (r) => ({ ...r, ...(await link(r.id)) })));
}

/** Erasure: every attachment the user uploaded, rows and bytes. */
export async function eraseAttachments(db: Db, blobs: BlobStore, userId: string) {
  const gone = await db.delete(attachments).where(eq(attachments.ownerId, userId)).returning({ id: attachments.id });
  await blobs.delete(gone.flatMap((r) => blobKeys(r.id)));
  return gone.length;
}

export const attachmentCleanupQueue = 'attachment-cleanup';
export const attachmentCleanupPayload = z.strictObject({
  /** Pending or refused uploads older than this are removed (past their upload URL's life). */
  olderThanS: z.number().int().min(1),
});

/**
 * Removes uploads never completed, and refused ones, once their upload URL has expired: the
 * rows first, so a late `complete` finds nothing, then whatever bytes arrived. Idempotent.
 */
export async function cleanupAttachments(db: Db, blobs: BlobStore, olderThanS: number, now = Date.now()) {
  const cutoff = new Date(now - olderThanS * 1000);
  const gone = await db
    .delete(attachments)
    .where(and(inArray(attachments.state, ['pending', 'refused']), lt(attachments.createdAt, cutoff)))
    .returning({ id: attachments.id });
  await blobs.delete(gone.flatMap((r) => blobKeys(r.id)));
  return { removed: gone.length };
}

export function attachmentCleanupJob(d: {
  db: Db;
  blobs: BlobStore;
  everyMs: number;
  uploadTtlS: number;
}): RepeatingJob<z.infer<typeof attachmentCleanupPayload>> {
  return {
    queue: attachmentCleanupQueue,
    schedulerId: 'attachment-cleanup',
    everyMs: d.everyMs,
    payload: attachmentCleanupPayload,
    // A minute past the URL's expiry: an upload that started just before it can still finish.
    data: { olderThanS: d.uploadTtlS + 60 },
    run: (data) => cleanupAttachments(d.db, d.blobs, data.olderThanS),
  };
}
