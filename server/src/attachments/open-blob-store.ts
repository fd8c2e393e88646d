import path from 'node:path';
import type { Config } from '../config.ts';
import type { BlobStore } from './blob-store.ts';

/** The blob store the configuration names: S3 when S3_ENDPOINT/S3_BUCKET are set, else DATA_DIR/blobs. */
export async function openBlobStore(config: Config): Promise<BlobStore> {
  if (config.S3_ENDPOINT && config.S3_BUCKET) {
    // Loaded only for S3: the embedded default never loads the AWS SDK.
    const { S3BlobStore } = await import('./blob-store.s3.ts');
    const store = new S3BlobStore({
      endpoint: config.S3_ENDPOINT,
      publicEndpoint: config.S3_PUBLIC_ENDPOINT,
      bucket: config.S3_BUCKET,
      region: config.S3_REGION,
      accessKeyId: config.S3_ACCESS_KEY_ID,
      secretAccessKey: config.S3_SECRET_ACCESS_KEY,
      forcePathStyle: config.S3_FORCE_PATH_STYLE,
    });
    await store.ensureBucket();
    return store;
  }
  const { DiskBlobStore } = await import('./blob-store.disk.ts');
  return new DiskBlobStore(path.join(config.DATA_DIR, 'blobs'));
}
