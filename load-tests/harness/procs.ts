import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { freePort } from '../../test/helpers/ports.ts';

export const repoRoot = path.resolve(import.meta.dirname, '..', '..');

// Linux reports utime/stime in clock ticks; USER_HZ is 100 on every x86-64 kernel we run on.
const CLK_TCK = 100;

/**
 * utime + stime of one process, in seconds (from /proc/<pid>/stat); 0 once it is gone. With
 * `reaped`, plus cutime + cstime: the CPU of children it has waited for (PostgreSQL backends
 * that exited), which would otherwise vanish from a sum over live processes.
 */
export function cpuSeconds(pid: number, reaped = false): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const own = Number(fields[11]) + Number(fields[12]);
    return (reaped ? own + Number(fields[13]) + Number(fields[14]) : own) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** Resident set size in bytes (VmRSS from /proc/<pid>/status); 0 once it is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The soft RLIMIT_NOFILE of a process (from /proc/<pid>/limits). */
export function maxOpenFiles(pid: number): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  return !m || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

/** A process and every descendant of it (PostgreSQL forks one backend per connection). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(root);
  return out;
}

/** Finds the pid of a process whose command line contains every needle (for servers started through runuser). */
export function findPid(needles: string[]): number | null {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (needles.every((n) => cmd.includes(n)) && !cmd.startsWith('runuser')) return Number(name);
    } catch {
      // exited meanwhile
    }
  }
  return null;
}

/** A named group of processes whose CPU and memory the bench reports together. */
export interface Watched {
  name: string;
  /** Current pids (a function: PostgreSQL backends come and go). */
  pids(): number[];
  /** A pid whose exited children's CPU counts too (the postmaster). */
  reaper?: number;
}

export interface Sample {
  at: number;
  cpu: Record<string, number>;
  rss: Record<string, number>;
}

export function sample(groups: Watched[]): Sample {
  const cpu: Record<string, number> = {};
  const rss: Record<string, number> = {};
  for (const g of groups) {
    let c = 0;
    let r = 0;
    for (const p of g.pids()) {
      c += cpuSeconds(p, p === g.reaper);
      r += rssBytes(p);
    }
    cpu[g.name] = c;
    rss[g.name] = r;
  }
  return { at: Date.now(), cpu, rss };
}

/** CPU seconds used per group between two samples. */
export function cpuDelta(a: Sample, b: Sample): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(b.cpu)) out[k] = round((b.cpu[k] ?? 0) - (a.cpu[k] ?? 0), 3);
  return out;
}

export const round = (x: number, digits = 2) => (Number.isFinite(x) ? Math.round(x * 10 ** digits) / 10 ** digits : x);

export interface NodeServer {
  name: string;
  port: number;
  /** METRICS_PORT given to it (a hub serves /metrics there; the peers ignore it). */
  metricsPort: number;
  pid: number;
  child: ChildProcess;
  logs: string[];
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts an entry point (TypeScript through tsx, or built JavaScript) as its own Node process on a free loopback port and waits
 * until `readyPath` answers 200. `nodeArgs` may add `--cpu-prof` and friends.
 */
export async function startNodeServer(opts: {
  name: string;
  entry: string;
  env: Record<string, string>;
  readyPath: string;
  nodeArgs?: string[];
  timeoutMs?: number;
}): Promise<NodeServer> {
  const port = await freePort();
  const metricsPort = await freePort();
  // A TypeScript entry runs through tsx; a built one (dist/…/*.js) as production runs it.
  const loader = opts.entry.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), ...loader, opts.entry], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', ...opts.env, PORT: String(port), METRICS_PORT: String(metricsPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const keep = (line: string) => {
    logs.push(line);
    if (logs.length > 200) logs.shift();
  };
  createInterface({ input: child.stdout! }).on('line', keep);
  createInterface({ input: child.stderr! }).on('line', keep);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${opts.name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${logs.slice(-20).join('\n')}`);
    }
    const ok = await fetch(`http://127.0.0.1:${port}${opts.readyPath}`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${opts.name} not ready after ${opts.timeoutMs ?? 60_000} ms:\n${logs.slice(-20).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    name: opts.name,
    port,
    metricsPort,
    pid: child.pid!,
    child,
    logs,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      process.off('exit', killOnExit);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    },
  };
}
