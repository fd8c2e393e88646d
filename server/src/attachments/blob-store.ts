/**
 * Where attachments' bytes live: one port, a local-disk adapter (the embedded default, under
 * DATA_DIR) and an S3 adapter (any S3-compatible store). Keys are opaque strings made by the
 * attachment service (`<attachment id>/file`, `<attachment id>/thumb`). Every adapter passes the
 * same contract suite (test/contracts/blob-store.contract.ts).
 */
export interface BlobStore {
  readonly kind: 'disk' | 's3';
  /** Stores bytes under `key`, replacing what was there. Atomic: a reader sees all or nothing. */
  put(key: string, body: Uint8Array, contentType: string): Promise<void>;
  /** The blob's size in bytes, or null when there is none. */
  stat(key: string): Promise<{ size: number } | null>;
  /** The blob's bytes (at most `maxBytes` of its start when given), or null when there is none. */
  read(key: string, maxBytes?: number): Promise<Buffer | null>;
  /**
   * The blob's size and at most `maxBytes` of its start, in one request where the store allows
   * (a ranged GET on S3), or null when there is none: what a type check needs, without the rest.
   */
  peek(key: string, maxBytes: number): Promise<{ size: number; head: Buffer } | null>;
  /** Streams the blob in chunks, or null when there is none. */
  stream(key: string): Promise<AsyncIterable<Uint8Array> | null>;
  /** Removes blobs; a missing key is no error (deletes are retried and may race). */
  delete(keys: string[]): Promise<void>;
  /** Every key under a prefix (sorted), for cleanup and the tests' "nothing left stored" checks. */
  list(prefix: string): Promise<string[]>;
  /**
   * Direct transfer, when the store can sign URLs itself (S3): a client sends the bytes to the
   * store without passing through the hub, and reads them from it. Absent (disk): the hub
   * serves both, behind its own signed tokens.
   */
  readonly direct?: DirectTransfer;
  close(): Promise<void>;
}

export interface DirectTransfer {
  /**
   * A presigned PUT for exactly this key, type and length: the store refuses another type or
   * length, and anything after `expiresInS`.
   */
  uploadUrl(key: string, opts: { contentType: string; size: number; expiresInS: number }): Promise<SignedRequest>;
  /** A presigned GET that answers with these Content-Type and Content-Disposition headers. */
  downloadUrl(key: string, opts: { contentType: string; disposition: string; expiresInS: number }): Promise<string>;
}

/** A request a client makes as given: the URL, the method and the headers it must send. */
export interface SignedRequest {
  url: string;
  method: 'PUT';
  headers: Record<string, string>;
}

const KEY = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}(\/[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}){0,3}$/;

/** Keys are a few plain path segments: nothing that could name a place outside the store. */
export function checkKey(key: string): string {
  if (!KEY.test(key) || key.includes('..')) throw new Error(`invalid blob key: ${JSON.stringify(key)}`);
  return key;
}
