import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';

const root = path.resolve(import.meta.dirname, '..', '..');

export interface ProcessReplica {
  port: number;
  /** Its METRICS_PORT (/metrics is not on the public port). */
  metricsPort: number;
  child: ChildProcess;
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
  logs: string[];
  /** Resolves at the first JSON log line (since the start) whose msg is `msg`. */
  waitFor(msg: string): Promise<void>;
}

/**
 * A hub replica as its own process, so tests can SIGKILL or SIGTERM it: the sources through tsx,
 * or with `dist` the production build (`npm start`'s entry point; build it first).
 */
export async function spawnReplica(env: Record<string, string>, opts: { dist?: boolean } = {}): Promise<ProcessReplica> {
  const args = opts.dist ? ['dist/server/main.js'] : ['--import', 'tsx', 'server/src/main.ts'];
  const child = spawn(process.execPath, args, {
    cwd: root,
    // LOG_LEVEL info: the 'hub listening' line tells the port.
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0', ...env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const messages: string[] = [];
  const waiters: { msg: string; resolve: () => void }[] = [];
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  child.stderr!.on('data', (b) => logs.push(String(b)));
  const { port, metricsPort } = await new Promise<{ port: number; metricsPort: number }>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      logs.push(line);
      try {
        const j = JSON.parse(line);
        messages.push(j.msg);
        for (const w of [...waiters]) if (w.msg === j.msg) waiters.splice(waiters.indexOf(w), 1), w.resolve();
        if (j.msg === 'hub listening') resolve({ port: j.port, metricsPort: j.metricsPort });
      } catch {
        // not JSON: ignore
      }
    });
    void exited.then((c) => reject(new Error(`replica exited (${c}) before listening: ${logs.slice(-10).join('\n')}`)));
  });
  return {
    port,
    metricsPort,
    child,
    exited,
    logs,
    waitFor(msg) {
      if (messages.includes(msg)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        waiters.push({ msg, resolve });
        void exited.then((c) => reject(new Error(`replica exited (${c}) before "${msg}"`)));
      });
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      process.off('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
