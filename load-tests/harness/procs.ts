/** What the bench reads about processes from /proc: CPU seconds, RSS, open-file limits, process trees. */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const repoRoot = path.resolve(import.meta.dirname, '..', '..');
export const round = (x: number, digits = 2) => (Number.isFinite(x) ? Math.round(x * 10 ** digits) / 10 ** digits : x);

/** A /proc file's text, or '' once the process is gone (a sample may race its exit). */
const read = (file: string) => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};
/** The fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
const statFields = (pid: number | string) => {
  const stat = read(`/proc/${pid}/stat`);
  return stat ? stat.slice(stat.lastIndexOf(')') + 2).split(' ') : null;
};

/**
 * utime + stime in seconds (USER_HZ is 100 on every x86-64 kernel); 0 once gone. With `reaped`, plus the CPU of children
 * it has waited for (PostgreSQL backends that exited), which would otherwise vanish from a sum over live processes.
 */
export function cpuSeconds(pid: number, reaped = false): number {
  const f = statFields(pid);
  if (!f) return 0;
  return (Number(f[11]) + Number(f[12]) + (reaped ? Number(f[13]) + Number(f[14]) : 0)) / 100;
}

/** A `kB` field of /proc/<pid>/status or smaps_rollup, in bytes; 0 once gone. */
export const kbField = (pid: number, field: string, file = 'status') =>
  Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(read(`/proc/${pid}/${file}`))?.[1] ?? 0) * 1024;
export const rssBytes = (pid: number) => kbField(pid, 'VmRSS');

/** The soft RLIMIT_NOFILE of a process. */
export function maxOpenFiles(pid: number): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(read(`/proc/${pid}/limits`));
  return !m || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

const pids = () => readdirSync('/proc').filter((n) => /^\d+$/.test(n));

/** A process and every descendant of it (PostgreSQL forks one backend per connection). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of pids()) {
    const ppid = Number(statFields(name)?.[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const out: number[] = [];
  const walk = (p: number) => (out.push(p), (children.get(p) ?? []).forEach(walk));
  walk(root);
  return out;
}

/** A process's command line, its arguments joined by spaces ('' once gone). */
export const cmdline = (pid: number | string) => read(`/proc/${pid}/cmdline`).replaceAll('\0', ' ');

/** The pid of a process whose command line holds every needle (not the runuser in front of it). */
export function findPid(needles: string[]): number | null {
  for (const name of pids()) {
    const cmd = cmdline(name);
    if (needles.every((n) => cmd.includes(n)) && !cmd.startsWith('runuser')) return Number(name);
  }
  return null;
}

/** A named group of processes whose CPU and memory are reported together. */
export interface Watched {
  name: string;
  /** Current pids (PostgreSQL backends come and go). */
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
  const s: Sample = { at: Date.now(), cpu: {}, rss: {} };
  for (const g of groups) {
    const list = g.pids();
    s.cpu[g.name] = list.reduce((a, p) => a + cpuSeconds(p, p === g.reaper), 0);
    s.rss[g.name] = list.reduce((a, p) => a + rssBytes(p), 0);
  }
  return s;
}

/** CPU seconds used per group between two samples. */
export const cpuDelta = (a: Sample, b: Sample): Record<string, number> =>
  Object.fromEntries(Object.keys(b.cpu).map((k) => [k, round((b.cpu[k] ?? 0) - (a.cpu[k] ?? 0), 3)]));
