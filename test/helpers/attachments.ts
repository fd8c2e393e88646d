import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import type { Replica } from '../../server/src/replica.ts';
import { services } from './env.ts';
import type { newUser } from './server.ts';

export type BlobKind = 'disk' | 's3';
export const blobKinds: BlobKind[] = ['disk', 's3'];

/** Replica settings for attachments on this store: a temp DATA_DIR (disk), or a fresh bucket on SeaweedFS. */
export function blobEnv(kind: BlobKind, dataDir: string): Record<string, string> {
  if (kind === 'disk') return { DATA_DIR: dataDir };
  const s3 = services.s3();
  return {
    DATA_DIR: dataDir,
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: `att-${randomBytes(6).toString('hex')}`,
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
  };
}

type User = Awaited<ReturnType<typeof newUser>>;

/** attachments.create, then the PUT it says to make; returns the id and the PUT's status. */
export async function upload(
  r: Replica,
  user: User,
  conversationId: string,
  file: { name: string; type: string; bytes: Uint8Array; declaredSize?: number },
) {
  const created = await user.client.attachments.create.mutate({
    conversationId,
    name: file.name,
    size: file.declaredSize ?? file.bytes.length,
    contentType: file.type,
  });
  const res = await fetch(new URL(created.upload.url, `http://127.0.0.1:${r.port}`), {
    method: created.upload.method,
    headers: created.upload.headers,
    body: file.bytes,
  });
  await res.arrayBuffer();
  return { id: created.id, status: res.status, created };
}

/** A PNG of one colour. */
export const png = (width = 640, height = 480) =>
  sharp({ create: { width, height, channels: 3, background: '#3366cc' } })
    .png()
    .toBuffer();

/**
 * A decompression bomb: a valid PNG of a few hundred bytes whose header says 100,000 × 100,000
 * pixels (10 gigapixels, 30 GB decoded).
 */
export function pngBomb(): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(100_000, 0);
  ihdr.writeUInt32BE(100_000, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const idat = Buffer.from([0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01]);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', idat),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
