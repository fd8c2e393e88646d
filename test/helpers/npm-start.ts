import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';

const root = path.resolve(import.meta.dirname, '..', '..');

/** `npm start` exactly as a newcomer runs it: no DATABASE_URL, no REDIS_URL, no secret. */
export function npmStart(dataDir: string) {
  const child = spawn('npm', ['start', '--silent'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/root',
      DATA_DIR: dataDir,
      PORT: '0',
      METRICS_PORT: '0',
      HOST: '127.0.0.1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so a signal reaches npm and the hub together, as from a terminal or a container runtime.
    detached: true,
  });
  const stop = () => process.kill(-child.pid!, 'SIGTERM');
  process.on('exit', () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  // 'close': every holder of the stdout pipe (npm and the hub it started) is gone.
  const exited = new Promise<number | null>((r) => child.once('close', (c) => r(c)));
  const messages: string[] = [];
  let stderr = '';
  child.stderr!.on('data', (b) => (stderr += b));
  const port = new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const j = JSON.parse(line);
        messages.push(j.msg);
        if (j.msg === 'hub listening') resolve(j.port);
      } catch {
        // npm's own lines
      }
    });
    void exited.then((c) => reject(new Error(`npm start exited ${c}`)));
  });
  return { child, port, exited, messages, stop, stderr: () => stderr };
}
