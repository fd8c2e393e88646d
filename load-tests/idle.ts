/**
 * Idle memory of a hub started the way a user starts it (`npm start`, or a node command line),
 * in a fresh DATA_DIR: RSS and PSS of its process tree once it answers `/` and has been idle,
 * and again after one page load, one sign-up, one login and one socket, idle again. The bench's
 * `idle` scenario runs it; alone:
 *
 *   node --import tsx load-tests/idle.ts [--tsx] [-- KEY=VALUE …]   # --tsx: the sources through tsx
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { processTree, repoRoot, round } from './harness/procs.ts';

export interface MemorySample {
  /** VmRSS of the hub's node process and every descendant (esbuild service, …), MiB. */
  rssMiB: number;
  /** Proportional set size of the same processes (shared pages divided among their sharers), MiB. */
  pssMiB: number;
  /** The launcher's own RSS (npm's node process), not part of the hub, MiB; 0 without one. */
  launcherRssMiB: number;
  /** V8 heap used and total, and external memory, from the hub's /metrics (MiB). */
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
  processes: { pid: number; cmd: string; rssMiB: number; pssMiB: number }[];
}

export interface IdleResult {
  label: string;
  command: string;
  startMs: number;
  /** Idle after start. */
  started: MemorySample;
  /** Idle after one page load, sign-up, login and socket. */
  used: MemorySample;
}

const MiB = 1024 * 1024;

function kb(file: string, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(file, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

const cmdline = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
};

async function metric(metricsPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

async function sampleTree(rootPid: number, metricsPort: number): Promise<MemorySample> {
  const pids = processTree(rootPid);
  const processes = pids.map((pid) => ({
    pid,
    cmd: cmdline(pid).slice(0, 120),
    rssMiB: round(kb(`/proc/${pid}/status`, 'VmRSS') / MiB, 1),
    pssMiB: round(kb(`/proc/${pid}/smaps_rollup`, 'Pss') / MiB, 1),
  }));
  // npm (or a shell) in front: the hub is the first node process whose command line names a hub entry point.
  const hubAt = processes.findIndex((p) => /server\/(src\/main\.ts|main\.js)/.test(p.cmd));
  const hub = hubAt < 0 ? processes : processes.slice(hubAt);
  const launchers = hubAt < 0 ? [] : processes.slice(0, hubAt);
  const sum = (list: typeof processes, k: 'rssMiB' | 'pssMiB') => round(list.reduce((a, p) => a + p[k], 0), 1);
  const [heapUsed, heapTotal, external] = await Promise.all([
    metric(metricsPort, 'hubbub_nodejs_heap_size_used_bytes'),
    metric(metricsPort, 'hubbub_nodejs_heap_size_total_bytes'),
    metric(metricsPort, 'hubbub_nodejs_external_memory_bytes'),
  ]);
  return {
    rssMiB: sum(hub, 'rssMiB'),
    pssMiB: sum(hub, 'pssMiB'),
    launcherRssMiB: sum(launchers, 'rssMiB'),
    heapUsedMiB: round(heapUsed / MiB, 1),
    heapTotalMiB: round(heapTotal / MiB, 1),
    externalMiB: round(external / MiB, 1),
    processes,
  };
}

/** What a first visit does: the page and its assets, a sign-up, a login, a socket to `ready`. */
async function useOnce(port: number) {
  const base = `http://127.0.0.1:${port}`;
  const html = await (await fetch(`${base}/`)).text();
  for (const m of html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)) {
    const r = await fetch(base + m[1]);
    if (!r.ok) throw new Error(`GET ${m[1]}: ${r.status}`);
    await r.arrayBuffer();
  }
  const call = async (proc: string, input: unknown) => {
    const r = await fetch(`${base}/trpc/${proc}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(input) });
    const j = (await r.json()) as { result?: { data: { accessToken: string } }; error?: unknown };
    if (!j.result) throw new Error(`${proc}: ${JSON.stringify(j.error)}`);
    return j.result.data;
  };
  const password = 'an idle passphrase';
  await call('auth.register', { email: 'idle@example.com', username: 'idle_user', password });
  const { accessToken } = await call('auth.login', { login: 'idle_user', password });
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { authorization: `Bearer ${accessToken}` } });
  const closed = new Promise<number>((r) => ws.once('close', r));
  // A socket closed before `ready`, or none in 30 s, fails the measurement instead of hanging it.
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no `ready` on the socket in 30 s')), 30_000);
    ws.once('error', (err) => (clearTimeout(timer), reject(err)));
    void closed.then((code) => (clearTimeout(timer), reject(new Error(`socket closed with ${code} before \`ready\``))));
    ws.on('message', (data) => {
      if ((JSON.parse(String(data)) as { type: string }).type === 'ready') (clearTimeout(timer), resolve());
    });
  });
  ws.close();
  await closed;
}

const idle = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `command` in a fresh DATA_DIR with only `env` (plus PATH and HOME, as a shell would
 * have), waits for 'hub listening' and `/`, lets it idle `idleMs`, samples, uses it once,
 * idles again, samples, and stops it with SIGTERM.
 */
export async function measureIdle(o: { label: string; command: string[]; env?: Record<string, string>; idleMs?: number; timeoutMs?: number }): Promise<IdleResult> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-idle-'));
  const idleMs = o.idleMs ?? 10_000;
  const t0 = Date.now();
  const child = spawn(o.command[0]!, o.command.slice(1), {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.homedir(), DATA_DIR: dataDir, PORT: '0', METRICS_PORT: '0', HOST: '127.0.0.1', ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, as from a terminal: SIGTERM reaches npm and the hub together.
    detached: true,
  });
  const logs: string[] = [];
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  const kill = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      // gone
    }
  };
  const killOnExit = () => kill('SIGKILL');
  process.on('exit', killOnExit);
  try {
    createInterface({ input: child.stderr! }).on('line', (l) => logs.push(l));
    const { port, metricsPort } = await new Promise<{ port: number; metricsPort: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${o.label}: not listening after ${o.timeoutMs ?? 120_000} ms:\n${logs.slice(-20).join('\n')}`)), o.timeoutMs ?? 120_000);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        logs.push(line);
        try {
          const j = JSON.parse(line) as { msg?: string; port?: number; metricsPort?: number };
          if (j.msg === 'hub listening' && j.port && j.metricsPort) (clearTimeout(timer), resolve({ port: j.port, metricsPort: j.metricsPort }));
        } catch {
          // npm's own lines
        }
      });
      void exited.then(() => (clearTimeout(timer), reject(new Error(`${o.label}: exited before listening:\n${logs.slice(-20).join('\n')}`))));
    });
    const page = await fetch(`http://127.0.0.1:${port}/`);
    if (!page.ok) throw new Error(`${o.label}: GET / answered ${page.status}`);
    await page.arrayBuffer();
    const startMs = Date.now() - t0;
    await idle(idleMs);
    const started = await sampleTree(child.pid!, metricsPort);
    await useOnce(port);
    await idle(idleMs);
    const used = await sampleTree(child.pid!, metricsPort);
    return { label: o.label, command: o.command.join(' '), startMs, started, used };
  } finally {
    kill('SIGTERM');
    const t = setTimeout(() => kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
    process.off('exit', killOnExit);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The tsx way of running the hub (before the production build), for before/after rows. */
export const TSX_COMMAND = [process.execPath, '--import', 'tsx', 'server/src/main.ts'];
export const NPM_START = ['npm', 'start', '--silent'];

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--');
  const env = Object.fromEntries((at < 0 ? [] : args.slice(at + 1)).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const r = await measureIdle({ label: args.includes('--tsx') ? 'tsx' : 'npm start', command: args.includes('--tsx') ? TSX_COMMAND : NPM_START, env });
  process.stdout.write(JSON.stringify(r, null, 2) + '\n');
}
