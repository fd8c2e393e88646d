import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { sharedSecret } from './server.ts';

const root = path.resolve(import.meta.dirname, '..', '..');

/**
 * `npm run workers` as its own process (the sources through tsx, as `npm run workers:dev`),
 * with the test's environment; `ca`, the far ends' CA, reaches it the way a deployment adds one
 * (NODE_EXTRA_CA_CERTS). Resolves once it logged that it started, with its metrics port.
 */
export async function spawnWorkers(env: Record<string, string>, ca?: string) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-ca-'));
  const caEnv: Record<string, string> = {};
  if (ca) {
    writeFileSync(path.join(dir, 'ca.pem'), ca);
    caEnv.NODE_EXTRA_CA_CERTS = path.join(dir, 'ca.pem');
  }
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'workers/src/main.ts'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      JWT_SECRET: sharedSecret,
      WORKERS_METRICS_PORT: '0',
      ...env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      HOST: '127.0.0.1',
      ...caEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let stderr = '';
  child.stderr!.on('data', (b) => (stderr = (stderr + b).slice(-4000)));
  const metricsPort = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      // pino writes one JSON object a line; anything else is not the line waited for.
      if (!l.startsWith('{')) return;
      const j = JSON.parse(l) as { msg?: string; metricsPort?: number };
      if (j.msg === 'workers started') resolve(j.metricsPort!);
    });
    void exited.then((code) => reject(new Error(`the worker process exited (${code}) before starting: ${stderr}`)));
  });
  return {
    child,
    exited,
    metricsPort,
    /** SIGKILL: whatever it held is left as a crash leaves it. */
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
    /** SIGTERM, as a deployment stops it; SIGKILL if it has not exited after the grace period. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 25_000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
