import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { freePort, waitForPort } from './ports.ts';

const root = path.resolve(import.meta.dirname, '..', '..');
export const haproxyConfig = path.join(root, 'deploy', 'haproxy.cfg');

export interface Slot {
  name: string;
  port: number;
}

export interface Haproxy {
  port: number;
  url: string;
  logs: string[];
  /** Resolves at the next log line (from now on) matching `re`. */
  next(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves once HAProxy has logged that `server` went UP or DOWN (after `since` lines). */
  state(server: string, state: 'UP' | 'DOWN', since?: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * deploy/haproxy.cfg as the repository has it, run by Debian's haproxy, with only the listen
 * address and the server lines changed for this machine, and one response header added naming
 * the server that answered (so tests see where the balancer sent each request). Each slot is a
 * server line: a hub may or may not listen on its port (HAProxy's checks tell which are up).
 */
export async function startHaproxy(slots: Slot[]): Promise<Haproxy> {
  const port = await freePort();
  const src = readFileSync(haproxyConfig, 'utf8');
  const lines = src.split('\n');
  const firstServer = lines.findIndex((l) => /^\s*server\s/.test(l));
  if (firstServer < 0 || !/^\s*bind\s+:8080\s*$/m.test(src)) throw new Error('deploy/haproxy.cfg: no `bind :8080` or no server lines');
  const out = lines.filter((l) => !/^\s*server\s/.test(l)).map((l) => (/^\s*bind\s+:8080\s*$/.test(l) ? `  bind 127.0.0.1:${port}` : l));
  out.splice(firstServer, 0, '  http-response set-header x-served-by %s', ...slots.map((s) => `  server ${s.name} 127.0.0.1:${s.port}`));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-haproxy-'));
  const cfg = path.join(dir, 'haproxy.cfg');
  writeFileSync(cfg, out.join('\n'));
  // -db: foreground, logs on stdout (the config's `log stdout`); -W: master-worker.
  const child = spawn('haproxy', ['-W', '-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  const waiters: { re: RegExp; from: number; resolve: (l: string) => void }[] = [];
  const onLine = (line: string) => {
    logs.push(line);
    for (const w of [...waiters]) if (w.re.test(line)) waiters.splice(waiters.indexOf(w), 1), w.resolve(line);
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', onLine);
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  await Promise.race([
    waitForPort(port),
    exited.then((c) => Promise.reject(new Error(`haproxy exited (${c}): ${logs.join('\n')} (is Debian's haproxy installed?)`))),
  ]);
  const next = (re: RegExp, timeoutMs = 30_000, from = logs.length) => {
    for (let i = from; i < logs.length; i++) if (re.test(logs[i]!)) return Promise.resolve(logs[i]!);
    return new Promise<string>((resolve, reject) => {
      const w = { re, from, resolve: (l: string) => (clearTimeout(t), resolve(l)) };
      const t = setTimeout(() => {
        waiters.splice(waiters.indexOf(w), 1);
        reject(new Error(`haproxy: no log line matching ${re} in ${timeoutMs} ms; last: ${logs.slice(-5).join(' | ')}`));
      }, timeoutMs);
      waiters.push(w);
    });
  };
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    logs,
    next: (re, timeoutMs) => next(re, timeoutMs),
    async state(server, state, since = 0, timeoutMs = 30_000) {
      await next(new RegExp(`[Ss]erver hubs/${server} is ${state}\\b`), timeoutMs, since);
    },
    async stop() {
      process.off('exit', killOnExit);
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
