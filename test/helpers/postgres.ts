import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitForPort } from './ports.ts';

export interface PostgresHandle {
  url: string;
  /** The cluster's data directory. */
  data: string;
  stop(): Promise<void>;
  /** Kills the server (SIGKILL) and deletes its data directory: the database is gone. */
  destroy(): Promise<void>;
}

const BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

/**
 * A throwaway PostgreSQL cluster on a free loopback port (initdb + postgres). As root, both run
 * as the `postgres` user through runuser, since the server refuses to run as root.
 */
export async function startPostgres(
  opts: {
    durable?: boolean;
    config?: Record<string, string>;
    /** Fills the (missing) data directory instead of initdb, through `run` (as the server's user): a restore. */
    init?: (data: string, run: (cmd: string, args: string[], env?: Record<string, string>) => void) => void;
  } = {},
): Promise<PostgresHandle> {
  if (!existsSync(path.join(BIN, 'postgres'))) throw new Error(`PostgreSQL server binaries not found in ${BIN} (set PG_BIN)`);
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-pg-'));
  chmodSync(dir, 0o777);
  const data = path.join(dir, 'data');
  const wrap = (cmd: string, args: string[]) =>
    asRoot ? (['runuser', ['-u', 'postgres', '--', cmd, ...args]] as const) : ([cmd, args] as const);
  const run = (cmd: string, args: string[], env: Record<string, string> = {}) => {
    const [c, a] = asRoot ? wrap('env', [...Object.entries(env).map(([k, v]) => `${k}=${v}`), cmd, ...args]) : wrap(cmd, args);
    const r = spawnSync(c, a, { encoding: 'utf8', env: { ...process.env, ...env } });
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr || r.stdout}`);
  };
  if (opts.init) opts.init(data, run);
  else run(path.join(BIN, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  const [pcmd, pargs] = wrap(path.join(BIN, 'postgres'), [
    '-D',
    data,
    '-p',
    String(port),
    '-k',
    dir,
    '-c',
    'listen_addresses=127.0.0.1',
    // Tests throw the cluster away, so they skip fsync; the bench measures durable writes (fsync on).
    ...(opts.durable ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']),
    '-c',
    'max_connections=300',
    '-c',
    'shared_buffers=256MB',
    ...Object.entries(opts.config ?? {}).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
  ]);
  const child: ChildProcess = spawn(pcmd, pargs, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b) => (stderr = (stderr + b).slice(-4000)));
  // As root the child is runuser, which does not pass SIGINT on to the server: signal the
  // postmaster itself (its pid is the first line of postmaster.pid), or it outlives us and its
  // stderr pipe keeps the parent's event loop alive.
  const postmasterPid = (): number | null => {
    try {
      const pid = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 ? pid : null;
    } catch {
      return null;
    }
  };
  const signal = (sig: NodeJS.Signals) => {
    const pid = postmasterPid();
    if (pid !== null) {
      try {
        process.kill(pid, sig);
      } catch {
        /* already gone */
      }
    }
    if (child.exitCode === null) child.kill(sig);
  };
  const killOnExit = () => signal('SIGKILL');
  process.on('exit', killOnExit);
  try {
    await Promise.race([
      waitForPort(port),
      new Promise((_, rej) => child.once('exit', (c) => rej(new Error(`postgres exited (${c}): ${stderr}`)))),
    ]);
  } catch (err) {
    signal('SIGKILL');
    throw err;
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    data,
    async destroy() {
      process.off('exit', killOnExit);
      const exited = child.exitCode === null ? new Promise((r) => child.once('exit', r)) : null;
      signal('SIGKILL');
      await exited;
      child.stderr?.destroy();
      rmSync(data, { recursive: true, force: true });
    },
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        signal('SIGINT'); // fast shutdown
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) signal('SIGKILL');
      }
      child.stderr?.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Creates a fresh database on the server of `adminUrl` and returns its URL (isolation per test). */
export async function createDatabase(adminUrl: string, name = 't_' + Math.random().toString(36).slice(2, 12)): Promise<string> {
  const { default: postgres } = await import('postgres');
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database "${name}"`);
  } finally {
    await admin.end();
  }
  const u = new URL(adminUrl);
  u.pathname = '/' + name;
  return u.toString();
}
