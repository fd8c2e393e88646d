import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { freePort, waitForPort } from './ports.ts';

export interface StripeMockHandle {
  url: string;
  stop(): Promise<void>;
}

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, '.cache/bin/stripe-mock');

/**
 * Stripe's own API mock server (stripe-mock, MIT) on a free loopback port, built once by
 * scripts/install-stripe-mock.sh. Stateless: it answers every documented endpoint with
 * fixture data, and sends no webhooks.
 */
export async function startStripeMock(): Promise<StripeMockHandle> {
  if (!existsSync(bin)) {
    await new Promise<void>((resolve, reject) => {
      const c = spawn(path.join(root, 'scripts/install-stripe-mock.sh'), { stdio: 'inherit' });
      c.on('error', reject);
      c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`install-stripe-mock.sh exited ${code}`))));
    });
  }
  const port = await freePort();
  // stripe-mock also serves HTTPS, on 12112 unless told otherwise: a free port too, so that
  // parallel runs do not collide.
  const httpsPort = await freePort();
  let stderr = '';
  const child: ChildProcess = spawn(bin, ['-http-addr', `127.0.0.1:${port}`, '-https-addr', `127.0.0.1:${httpsPort}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  child.stderr!.on('data', (b) => (stderr += b));
  child.stdout!.resume();
  await Promise.race([
    waitForPort(port, '127.0.0.1', 60_000),
    new Promise((_, rej) => child.once('exit', (c) => rej(new Error(`stripe-mock exited (${c}): ${stderr}`)))),
  ]);
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
