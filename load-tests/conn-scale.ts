/**
 * The idle-connection memory test: how much RSS a hub process needs per authenticated, idle
 * socket, in steps up to the open-file limit. Several worker processes each hold a share of the sockets with `ws`,
 * binding their local side to 127.0.1.x addresses so a single source address does not run
 * out of ephemeral ports. Each socket completes the real handshake (token at the upgrade,
 * `ready`, `resume`, `resumed`) and then stays idle (answering the server's pings).
 *
 * The bench calls runConnScale(); standalone (against a hub you started, with a bench seed
 * file): node --import tsx load-tests/conn-scale.ts --url ws://127.0.0.1:3000/ws \
 *   --seed /tmp/…/seed.json --pid <hub pid> --target 20000 --steps 5000,10000,20000 \
 *   [--metrics http://127.0.0.1:9464/metrics]
 *
 * Bounded: it opens at most `target` sockets, only to the loopback URL it is given, gives up
 * on a step after STEP_TIMEOUT_MS, and closes everything at the end.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { cpuSeconds, maxOpenFiles, rssBytes, round } from './harness/procs.ts';

export interface ConnScaleStep {
  connections: number;
  rssMiB: number;
  rssPerConnKiB: number;
  /** V8 heap in use on the hub (its /metrics), and per socket above the baseline's. */
  heapUsedMiB?: number;
  heapPerConnKiB?: number;
  cpuS: number;
}

/** The hub's V8 heap in use, from its /metrics (the total's collector sets both gauges). */
async function heapUsed(metricsUrl: string | undefined): Promise<number | undefined> {
  if (!metricsUrl) return undefined;
  const base = `${metricsUrl}?name=`;
  try {
    await (await fetch(base + 'hubbub_nodejs_heap_size_total_bytes')).text();
    const text = await (await fetch(base + 'hubbub_nodejs_heap_size_used_bytes')).text();
    const m = /^hubbub_nodejs_heap_size_used_bytes\s+([0-9.e+]+)/m.exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A full garbage collection in the hub, through the V8 inspector it was started with
 * (`--inspect=127.0.0.1:<port>`): `HeapProfiler.collectGarbage`, the collection DevTools'
 * "collect garbage" button makes. Taken before each RSS sample, so that the step-to-step slope is
 * the sockets' memory, not whether a major collection happened to run just before the sample
 * (which moved it between 1.4 and 4 KiB per socket from run to run). Nothing in the hub changes.
 */
export async function inspectorGc(inspectPort: number): Promise<(() => Promise<void>) & { close(): void }> {
  const list = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
  const ws = new WebSocket(list[0]!.webSocketDebuggerUrl);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let id = 0;
  const waiting = new Map<number, () => void>();
  ws.on('message', (data) => {
    const m = JSON.parse(String(data)) as { id?: number };
    if (m.id !== undefined) waiting.get(m.id)?.();
  });
  const call = (method: string) =>
    new Promise<void>((resolve, reject) => {
      const n = ++id;
      const timer = setTimeout(() => reject(new Error(`inspector: no answer to ${method}`)), 60_000);
      waiting.set(n, () => (clearTimeout(timer), waiting.delete(n), resolve()));
      ws.send(JSON.stringify({ id: n, method }));
    });
  await call('HeapProfiler.enable');
  const gc = async () => {
    // Twice: the first collection's finalizers free what the second then reclaims.
    await call('HeapProfiler.collectGarbage');
    await call('HeapProfiler.collectGarbage');
  };
  return Object.assign(gc, { close: () => ws.close() });
}

export interface ConnScaleResult {
  url: string;
  target: number;
  /** Target after capping by the hub's and the workers' open-file limits. */
  effectiveTarget: number;
  hubFdLimit: number;
  maxConnections: number;
  baselineRssMiB: number;
  steps: ConnScaleStep[];
  failures: number;
  /** Sockets closed before `resumed` and opened again (a real client reconnects). */
  retries: number;
  stopReason: string;
  ok: boolean;
}

const STEP_TIMEOUT_MS = 180_000;
const IN_FLIGHT_PER_WORKER = 64;
/** fds a hub needs besides sockets (database pool, Redis, listen socket, files). */
const HUB_FD_RESERVE = 200;
const WORKER_FD_RESERVE = 100;

type ToWorker = { type: 'init'; url: string; tokens: string[]; addresses: string[] } | { type: 'open'; upTo: number } | { type: 'close' };
type FromWorker = { type: 'progress'; open: number; failed: number; retries: number; lastError?: string };

export async function runConnScale(opts: {
  url: string;
  seedFile: string;
  target: number;
  steps: number[];
  workers: number;
  serverPid: number;
  /** The hub's /metrics (on its METRICS_PORT), for the V8 heap; without it the heap is not reported. */
  metricsUrl?: string;
  /** A full collection in the hub before each sample (inspectorGc); without it RSS is read as it is. */
  gc?: () => Promise<void>;
  log?: (s: string) => void;
}): Promise<ConnScaleResult> {
  const log = opts.log ?? (() => {});
  const url = new URL(opts.url);
  if (!/^127\./.test(url.hostname) && url.hostname !== 'localhost') throw new Error('conn-scale only targets loopback addresses');
  const seed = JSON.parse(readFileSync(opts.seedFile, 'utf8')) as { users: { t: string }[] };
  const hubFdLimit = maxOpenFiles(opts.serverPid);
  const myFdLimit = maxOpenFiles(process.pid);
  let effectiveTarget = Math.min(opts.target, hubFdLimit - HUB_FD_RESERVE);
  const workers = Math.max(opts.workers, Math.ceil(effectiveTarget / (myFdLimit - WORKER_FD_RESERVE)));
  let stopReason = effectiveTarget < opts.target ? `capped at ${effectiveTarget}: the hub's open-file limit (RLIMIT_NOFILE) is ${hubFdLimit}` : 'target reached';
  const steps = [...new Set([...opts.steps.filter((s) => s < effectiveTarget), effectiveTarget])].sort((a, b) => a - b);

  const procs: { child: ChildProcess; open: number; failed: number; retries: number; lastError?: string }[] = [];
  for (let w = 0; w < workers; w++) {
    const child = fork(fileURLToPath(import.meta.url), ['--worker'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const p = { child, open: 0, failed: 0, retries: 0, lastError: undefined as string | undefined };
    child.on('message', (m: FromWorker) => {
      p.open = m.open;
      p.failed = m.failed;
      p.retries = m.retries;
      if (m.lastError) p.lastError = m.lastError;
    });
    procs.push(p);
    const tokens: string[] = [];
    for (let g = w; g < effectiveTarget; g += workers) tokens.push(seed.users[g % seed.users.length]!.t);
    // 40 local addresses per worker, disjoint across workers.
    const addresses = Array.from({ length: 40 }, (_, i) => `127.0.${1 + w}.${1 + i}`);
    child.send({ type: 'init', url: opts.url, tokens, addresses } satisfies ToWorker);
  }
  const killAll = () => procs.forEach((p) => p.child.kill('SIGKILL'));
  process.on('exit', killAll);

  await opts.gc?.();
  const baselineRss = rssBytes(opts.serverPid);
  const baselineHeap = await heapUsed(opts.metricsUrl);
  const cpu0 = cpuSeconds(opts.serverPid);
  const result: ConnScaleResult = {
    url: opts.url,
    target: opts.target,
    effectiveTarget,
    hubFdLimit,
    maxConnections: 0,
    baselineRssMiB: round(baselineRss / 2 ** 20, 1),
    steps: [],
    failures: 0,
    retries: 0,
    stopReason,
    ok: true,
  };
  const total = () => procs.reduce((a, p) => a + p.open, 0);
  const failed = () => procs.reduce((a, p) => a + p.failed, 0);
  try {
    for (const step of steps) {
      procs.forEach((p, w) => {
        const share = Math.floor(step / workers) + (w < step % workers ? 1 : 0);
        p.child.send({ type: 'open', upTo: share } satisfies ToWorker);
      });
      const started = Date.now();
      let lastLog = 0;
      while (total() + failed() < step && Date.now() - started < STEP_TIMEOUT_MS) {
        await new Promise((r) => setTimeout(r, 200));
        if (Date.now() - lastLog > 5000) {
          lastLog = Date.now();
          log(`  conn-scale: ${total()} open, ${failed()} failed, ${procs.reduce((a, p) => a + p.retries, 0)} retried (step ${step})`);
        }
      }
      const open = total();
      result.failures = failed();
      result.retries = procs.reduce((a, p) => a + p.retries, 0);
      if (open < step) {
        const err = procs.map((p) => p.lastError).find(Boolean);
        result.stopReason = `stopped at ${open} of ${step}: ${result.failures} failed${err ? ` (${err})` : ''}${Date.now() - started >= STEP_TIMEOUT_MS ? ', step timed out' : ''}`;
        result.ok = false;
      }
      // Let the connect-time garbage go before reading RSS (a full collection where the hub
      // has an inspector), then wait until RSS stops falling.
      await opts.gc?.();
      let rss = rssBytes(opts.serverPid);
      for (let i = 0; i < 10; i++) {
        await new Promise((r) => setTimeout(r, 500));
        const now = rssBytes(opts.serverPid);
        if (now >= rss - 256 * 1024) {
          rss = Math.min(rss, now);
          break;
        }
        rss = now;
      }
      const heap = await heapUsed(opts.metricsUrl);
      const s: ConnScaleStep = {
        connections: open,
        rssMiB: round(rss / 2 ** 20, 1),
        rssPerConnKiB: open > 0 ? round((rss - baselineRss) / open / 1024, 2) : NaN,
        heapUsedMiB: heap !== undefined ? round(heap / 2 ** 20, 1) : undefined,
        heapPerConnKiB: heap !== undefined && baselineHeap !== undefined && open > 0 ? round((heap - baselineHeap) / open / 1024, 2) : undefined,
        cpuS: round(cpuSeconds(opts.serverPid) - cpu0, 2),
      };
      result.steps.push(s);
      result.maxConnections = Math.max(result.maxConnections, open);
      log(`  conn-scale: ${open} sockets, hub RSS ${s.rssMiB} MiB, ${s.rssPerConnKiB} KiB per socket; V8 heap ${s.heapUsedMiB ?? '?'} MiB, ${s.heapPerConnKiB ?? '?'} KiB per socket`);
      if (!result.ok) break;
    }
  } finally {
    for (const p of procs) p.child.send({ type: 'close' } satisfies ToWorker);
    await Promise.all(procs.map((p) => new Promise((r) => (p.child.exitCode !== null ? r(null) : p.child.once('exit', r)))));
    process.off('exit', killAll);
  }
  return result;
}

// ---- worker ----------------------------------------------------------------------------------

function worker() {
  let url = '';
  let tokens: string[] = [];
  let addresses: string[] = [];
  let want = 0;
  let next = 0;
  let open = 0;
  let failed = 0;
  let retries = 0;
  let inFlight = 0;
  let lastError: string | undefined;
  let closing = false;
  const sockets: WebSocket[] = [];
  let reportTimer: NodeJS.Timeout | null = null;
  const report = () => {
    if (reportTimer) return;
    reportTimer = setTimeout(() => {
      reportTimer = null;
      process.send!({ type: 'progress', open, failed, retries, lastError } satisfies FromWorker);
    }, 100);
  };
  const pump = () => {
    while (inFlight < IN_FLIGHT_PER_WORKER && next < want && next < tokens.length) {
      const i = next++;
      inFlight++;
      openOne(i, 0);
    }
  };
  // A socket closed before `resumed` is retried (up to 2 more times), as a real client
  // reconnects; the retries are counted and reported, never hidden.
  const openOne = (i: number, attempt: number) => {
    let settled = false;
    const settle = (ok: boolean, why?: string) => {
      if (settled) return;
      settled = true;
      if (!ok && attempt < 2 && !closing) {
        retries++;
        lastError = `retried: ${why}`;
        openOne(i, attempt + 1);
        return;
      }
      inFlight--;
      if (ok) open++;
      else {
        failed++;
        lastError = why;
      }
      report();
      pump();
    };
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${tokens[i]}` },
      localAddress: addresses[i % addresses.length],
      perMessageDeflate: false,
    });
    sockets.push(ws);
    ws.on('message', (data) => {
      if (settled) return; // idle from here on: presence and the like are dropped unread
      const f = JSON.parse(String(data)) as { type: string; convs?: Record<string, number> };
      if (f.type === 'ready') ws.send(JSON.stringify({ type: 'resume', ref: 'r', convs: f.convs ?? {} }));
      else if (f.type === 'resumed') settle(true);
    });
    ws.on('error', (err) => settle(false, err.message));
    ws.on('close', (code) => {
      if (!settled) settle(false, `closed ${code}`);
      else if (open > 0 && !closing) {
        open--;
        failed++;
        lastError = `dropped while idle (${code})`;
        report();
      }
    });
  };
  process.on('message', (m: ToWorker) => {
    if (m.type === 'init') {
      url = m.url;
      tokens = m.tokens;
      addresses = m.addresses;
    } else if (m.type === 'open') {
      want = m.upTo;
      pump();
    } else if (m.type === 'close') {
      closing = true;
      for (const ws of sockets) ws.terminate();
      setTimeout(() => process.exit(0), 200);
    }
  });
  process.on('disconnect', () => process.exit(0));
}

// ---- CLI -------------------------------------------------------------------------------------

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain && process.argv.includes('--worker')) worker();
else if (isMain) {
  const arg = (k: string) => {
    const i = process.argv.indexOf(`--${k}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const need = (k: string) => arg(k) ?? (console.error(`--${k} is required`), process.exit(2));
  runConnScale({
    url: need('url'),
    seedFile: need('seed'),
    serverPid: Number(need('pid')),
    metricsUrl: arg('metrics'),
    target: Number(arg('target') ?? 20_000),
    steps: (arg('steps') ?? '5000,10000,20000').split(',').map(Number),
    workers: Number(arg('workers') ?? 4),
    log: (s) => console.error(s),
  }).then((r) => {
    console.log(JSON.stringify(r, null, 2));
    process.exit(r.ok ? 0 : 1);
  });
}
