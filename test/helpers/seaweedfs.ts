import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitForPort } from './ports.ts';

export interface SeaweedHandle {
  /** The S3 endpoint, e.g. http://127.0.0.1:PORT. */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  stop(): Promise<void>;
}

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, '.cache/bin/weed');

/**
 * SeaweedFS (Apache-2.0) on loopback as an S3-compatible store, built once by
 * scripts/install-seaweedfs.sh: master, volume, filer and S3 gateway in one `weed server`
 * process over a temp folder. One identity with real keys, so every request the AWS SDK makes
 * is signed and checked.
 */
export async function startSeaweed(): Promise<SeaweedHandle> {
  if (!existsSync(bin)) {
    await new Promise<void>((resolve, reject) => {
      const c = spawn(path.join(root, 'scripts/install-seaweedfs.sh'), { stdio: 'inherit' });
      c.on('error', reject);
      c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`install-seaweedfs.sh exited ${code}`))));
    });
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-seaweed-'));
  const accessKeyId = `hubbub${randomBytes(6).toString('hex')}`;
  const secretAccessKey = randomBytes(24).toString('base64url');
  const config = path.join(dir, 's3.json');
  writeFileSync(
    config,
    JSON.stringify({
      identities: [
        {
          name: 'hubbub',
          credentials: [{ accessKey: accessKeyId, secretKey: secretAccessKey }],
          actions: ['Admin', 'Read', 'Write', 'List', 'Tagging'],
        },
      ],
    }),
  );
  // Every port named: the defaults are fixed numbers (gRPC at port + 10000, Iceberg 8181, Lance
  // 9101) that parallel runs would fight over.
  const ports = await Promise.all(Array.from({ length: 8 }, () => freePort()));
  const [master, volume, filer, s3, masterGrpc, volumeGrpc, filerGrpc, s3Grpc] = ports as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const data = path.join(dir, 'data');
  mkdirSync(data);
  const args = [
    'server',
    '-ip=127.0.0.1',
    '-ip.bind=127.0.0.1',
    `-dir=${data}`,
    `-master.port=${master}`,
    `-volume.port=${volume}`,
    `-filer.port=${filer}`,
    '-s3',
    `-s3.port=${s3}`,
    `-s3.config=${config}`,
    `-master.port.grpc=${masterGrpc}`,
    `-volume.port.grpc=${volumeGrpc}`,
    `-filer.port.grpc=${filerGrpc}`,
    `-s3.port.grpc=${s3Grpc}`,
    '-s3.port.iceberg=0',
    '-s3.port.lance=0',
    // Small volumes (the default, 30 GB each, is for production disks), as many as the disk
    // holds: every bucket is a collection with volumes of its own.
    '-master.volumeSizeLimitMB=64',
    '-volume.max=0',
  ];
  let stderr = '';
  const child: ChildProcess = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  child.stderr!.on('data', (b) => (stderr = (stderr + b).slice(-4000)));
  child.stdout!.resume();
  await Promise.race([
    waitForPort(s3, '127.0.0.1', 90_000),
    new Promise((_, rej) => child.once('exit', (c) => rej(new Error(`weed exited (${c}): ${stderr}`)))),
  ]);
  return {
    endpoint: `http://127.0.0.1:${s3}`,
    accessKeyId,
    secretAccessKey,
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
