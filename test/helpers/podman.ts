import { execFile, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import type { ProcessReplica } from './process-replica.ts';

const root = path.resolve(import.meta.dirname, '..', '..');
const run = promisify(execFile);

/**
 * podman as this machine runs it: runc (crun, the default, fails on this kernel's cgroups),
 * limits the runtime may set here, host networking (no CNI bridge needed), and no healthcheck
 * timer (podman schedules those through systemd, which is not running): the tests run
 * `podman healthcheck run` themselves.
 */
export const podmanArgs = ['--runtime', 'runc'];
export const runArgs = ['--network', 'host', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--health-interval', 'disable'];

export async function podman(...args: string[]): Promise<string> {
  const { stdout } = await run('podman', [...podmanArgs, ...args], { maxBuffer: 64 << 20 });
  return stdout.trim();
}

/** Builds the image with scripts/image.sh (the base and the layers are cached) and returns its tag. */
export async function buildImage(extra: string[] = []): Promise<string> {
  const { stdout } = await run('bash', [path.join(root, 'scripts/image.sh'), ...extra], {
    cwd: root,
    maxBuffer: 64 << 20,
    timeout: 900_000,
  });
  const lines = stdout.trim().split('\n');
  return lines[lines.length - 1]!;
}

export interface Container {
  name: string;
  child: ChildProcess;
  /** The container's exit code, once `podman run` returns. */
  exited: Promise<number | null>;
  /** JSON log lines' `msg`, in order. */
  messages: string[];
  logs: string[];
  /** Resolves with the first JSON log line whose msg is `msg`. */
  waitFor(msg: string): Promise<Record<string, unknown>>;
  signal(sig: string): Promise<void>;
  remove(): Promise<void>;
}

/** `podman run` attached, so the container's stdout is ours line by line. */
export function runContainer(
  image: string,
  name: string,
  opts: { env?: Record<string, string>; volumes?: string[]; command?: string[]; args?: string[] } = {},
): Container {
  const args = ['run', '--name', name, ...runArgs, ...(opts.args ?? [])];
  for (const [k, v] of Object.entries(opts.env ?? {})) args.push('-e', `${k}=${v}`);
  for (const v of opts.volumes ?? []) args.push('-v', v);
  const child = spawn('podman', [...podmanArgs, ...args, image, ...(opts.command ?? [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  const messages: string[] = [];
  const waiters: { msg: string; resolve: (j: Record<string, unknown>) => void }[] = [];
  const seen: Record<string, unknown>[] = [];
  const exited = new Promise<number | null>((r) => child.once('close', (c) => r(c)));
  const onLine = (line: string) => {
    logs.push(line);
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(line);
    } catch {
      return; // podman's own lines and stderr text: kept in logs only
    }
    seen.push(j);
    messages.push(String(j.msg));
    for (const w of [...waiters]) if (w.msg === j.msg) waiters.splice(waiters.indexOf(w), 1), w.resolve(j);
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', onLine);
  const killOnExit = () => spawn('podman', [...podmanArgs, 'rm', '-f', '-v', name], { stdio: 'ignore' });
  process.on('exit', killOnExit);
  return {
    name,
    child,
    exited,
    messages,
    logs,
    waitFor(msg) {
      const hit = seen.find((j) => j.msg === msg);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        waiters.push({ msg, resolve });
        void exited.then((c) => reject(new Error(`container ${name} exited (${c}) before "${msg}":\n${logs.slice(-15).join('\n')}`)));
      });
    },
    async signal(sig) {
      await podman('kill', '--signal', sig, name);
    },
    async remove() {
      process.off('exit', killOnExit);
      await podman('rm', '-f', '-v', name).catch((err) => process.stderr.write(`podman rm ${name}: ${err}\n`));
    },
  };
}

/** `podman healthcheck run`: the image's HEALTHCHECK, run once now. */
export async function healthcheck(name: string): Promise<'healthy' | 'unhealthy'> {
  try {
    await run('podman', [...podmanArgs, 'healthcheck', 'run', name]);
    return 'healthy';
  } catch (err) {
    if ((err as { code?: number }).code === 1) return 'unhealthy';
    throw err;
  }
}

/**
 * A hub replica in a container of `image` (host network, removed when it exits), shaped like a
 * spawned process: the drill runs it behind HAProxy as it runs hub processes. A signal to
 * `child` reaches the container (podman run proxies signals).
 */
export async function containerReplica(image: string, name: string, env: Record<string, string>): Promise<ProcessReplica> {
  const c = runContainer(image, name, { env: { HOST: '127.0.0.1', ...env, LOG_LEVEL: 'info' }, args: ['--rm'] });
  const listening = await c.waitFor('hub listening');
  return {
    port: Number(listening.port),
    metricsPort: Number(listening.metricsPort),
    child: c.child,
    exited: c.exited,
    logs: c.logs,
    waitFor: (msg) => c.waitFor(msg).then(() => undefined),
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (c.child.exitCode === null) await c.signal(signal).catch((err) => process.stderr.write(`podman kill ${name}: ${err}\n`));
      const code = await c.exited;
      await c.remove();
      return code;
    },
  };
}
