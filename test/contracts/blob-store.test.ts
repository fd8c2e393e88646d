/** The BlobStore contract on local disk (a temp folder) and on SeaweedFS over S3 (a bucket per test). */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DiskBlobStore } from '../../server/src/attachments/blob-store.disk.ts';
import { S3BlobStore } from '../../server/src/attachments/blob-store.s3.ts';
import { services } from '../helpers/env.ts';
import { registerBlobStoreContractTests } from './blob-store.contract.ts';

registerBlobStoreContractTests('local disk', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-blobs-'));
  const store = new DiskBlobStore(dir);
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

registerBlobStoreContractTests('SeaweedFS (S3)', async () => {
  const s3 = services.s3();
  let skew = 0;
  const store = new S3BlobStore({
    endpoint: s3.endpoint,
    bucket: `contract-${randomBytes(6).toString('hex')}`,
    region: 'us-east-1',
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    forcePathStyle: true,
    now: () => Date.now() + skew,
  });
  await store.ensureBucket();
  return {
    store,
    skewClock: (ms) => (skew = ms),
    cleanup: async () => {
      await store.delete(await store.list(''));
      await store.close();
    },
  };
});
