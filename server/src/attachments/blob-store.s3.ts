import {
  CreateBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { type BlobStore, checkKey, type DirectTransfer, type SignedRequest } from './blob-store.ts';

export interface S3BlobStoreOptions {
  endpoint: string;
  /** The endpoint as browsers reach it, for presigned URLs (default: `endpoint`). */
  publicEndpoint?: string;
  bucket: string;
  region: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Path-style URLs (`endpoint/bucket/key`): what most self-hosted S3 servers want. */
  forcePathStyle: boolean;
  /** The clock presigned URLs are signed at (tests move it to sign expired URLs). */
  now?: () => number;
}

const missing = (err: unknown) =>
  err instanceof S3ServiceException && (err.$metadata.httpStatusCode === 404 || err.name === 'NotFound' || err.name === 'NoSuchKey');

/**
 * Blobs in an S3-compatible bucket through the AWS SDK. Clients upload and download directly
 * with presigned URLs (the hub signs, the bytes never pass through it); the hub itself uses the
 * same bucket for thumbnails, checks and deletes.
 */
export class S3BlobStore implements BlobStore {
  readonly kind = 's3' as const;
  readonly direct: DirectTransfer;
  private readonly client: S3Client;
  private readonly signer: S3Client;
  private readonly bucket: string;
  private readonly now: () => number;

  constructor(o: S3BlobStoreOptions) {
    this.bucket = o.bucket;
    this.now = o.now ?? Date.now;
    const base = {
      region: o.region,
      forcePathStyle: o.forcePathStyle,
      credentials: o.accessKeyId && o.secretAccessKey ? { accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey } : undefined,
      // Checksums only where S3 requires them: a presigned PUT that carried a checksum of the
      // SDK's choosing would bind the browser to bytes the hub has never seen.
      requestChecksumCalculation: 'WHEN_REQUIRED' as const,
      responseChecksumValidation: 'WHEN_REQUIRED' as const,
    };
    this.client = new S3Client({ ...base, endpoint: o.endpoint });
    this.signer = o.publicEndpoint && o.publicEndpoint !== o.endpoint ? new S3Client({ ...base, endpoint: o.publicEndpoint }) : this.client;
    this.direct = {
      uploadUrl: (key, opts) => this.uploadUrl(key, opts),
      downloadUrl: (key, opts) =>
        getSignedUrl(
          this.signer,
          new GetObjectCommand({
            Bucket: this.bucket,
            Key: key,
            ResponseContentType: opts.contentType,
            ResponseContentDisposition: opts.disposition,
          }),
          { expiresIn: opts.expiresInS, signingDate: new Date(this.now()) },
        ),
    };
  }

  /** Creates the bucket when it does not exist (a fresh deployment or test server). */
  async ensureBucket() {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      if (!missing(err)) throw err;
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    }
  }

  private async uploadUrl(key: string, opts: { contentType: string; size: number; expiresInS: number }): Promise<SignedRequest> {
    const cmd = new PutObjectCommand({ Bucket: this.bucket, Key: checkKey(key), ContentType: opts.contentType, ContentLength: opts.size });
    // Type and length are signed headers: the store refuses a request that sends others.
    const url = await getSignedUrl(this.signer, cmd, {
      expiresIn: opts.expiresInS,
      signingDate: new Date(this.now()),
      signableHeaders: new Set(['content-type', 'content-length']),
    });
    return { url, method: 'PUT', headers: { 'content-type': opts.contentType } };
  }

  async put(key: string, body: Uint8Array, contentType: string) {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: checkKey(key), Body: body, ContentType: contentType }));
  }

  async stat(key: string) {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: r.ContentLength ?? 0 };
    } catch (err) {
      if (missing(err)) return null;
      throw err;
    }
  }

  async read(key: string, maxBytes?: number) {
    if (maxBytes === 0) return (await this.stat(key)) ? Buffer.alloc(0) : null;
    try {
      const r = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: maxBytes === undefined ? undefined : `bytes=0-${maxBytes - 1}` }),
      );
      return Buffer.from(await r.Body!.transformToByteArray());
    } catch (err) {
      if (missing(err)) return null;
      // A range past the end of an empty object.
      if (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 416) return Buffer.alloc(0);
      throw err;
    }
  }

  async peek(key: string, maxBytes: number) {
    if (maxBytes <= 0) {
      const s = await this.stat(key);
      return s && { size: s.size, head: Buffer.alloc(0) };
    }
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: checkKey(key), Range: `bytes=0-${maxBytes - 1}` }));
      const head = Buffer.from(await r.Body!.transformToByteArray());
      // `bytes 0-4099/123456`: the total after the slash (a store that ignores the range sends it all).
      const total = /\/(\d+)$/.exec(r.ContentRange ?? '')?.[1];
      return { size: total ? Number(total) : head.length, head: head.subarray(0, maxBytes) };
    } catch (err) {
      if (missing(err)) return null;
      // A range past the end of an empty object.
      if (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 416) return { size: 0, head: Buffer.alloc(0) };
      throw err;
    }
  }

  async stream(key: string) {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return r.Body as AsyncIterable<Uint8Array>;
    } catch (err) {
      if (missing(err)) return null;
      throw err;
    }
  }

  async delete(keys: string[]) {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      const r = await this.client.send(
        new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
      );
      const failed = (r.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length) throw new Error(`S3 delete failed for ${failed.length} keys: ${failed[0]!.Code} ${failed[0]!.Message}`);
    }
  }

  async list(prefix: string) {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const r = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of r.Contents ?? []) if (o.Key) out.push(o.Key);
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out.sort();
  }

  async close() {
    this.client.destroy();
    if (this.signer !== this.client) this.signer.destroy();
  }
}
