import { spawn, type ChildProcess } from 'node:child_process';
import { freePort, waitForPort } from './ports.ts';

export interface RedisHandle {
  url: string;
  port: number;
  /** Stops the server (SIGKILL: whatever it held is gone, as in a crash). */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** A real redis-server on a free loopback port, no persistence. */
export async function startRedis(): Promise<RedisHandle> {
  const port = await freePort();
  let child: ChildProcess | null = null;
  const killOnExit = () => child?.kill('SIGKILL');
  process.on('exit', killOnExit);
  const start = async () => {
    let stderr = '';
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.on('error', (e) => (stderr += String(e)));
    child.stderr!.on('data', (b) => (stderr += b));
    child.stdout!.resume();
    await Promise.race([
      waitForPort(port, '127.0.0.1', 15_000),
      new Promise((_, rej) =>
        child!.once('exit', (c) => rej(new Error(`redis-server exited (${c}): ${stderr} (is redis-server installed?)`))),
      ),
    ]);
  };
  const kill = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill,
    start,
    async stop() {
      process.off('exit', killOnExit);
      await kill();
    },
  };
}
