/**
 * Idle memory of a hub started the way a user starts it (`npm start`: the build, a fresh DATA_DIR), embedded and with
 * PostgreSQL + Redis, and the same sources through tsx as the baseline: RSS and PSS of its process tree once it answers
 * `/` and has idled 10 s, and again after one page load, sign-up, login and socket, idle again. The larger counts.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { createDatabase } from '../../test/helpers/postgres.ts';
import { cmdline, kbField, processTree, round } from '../harness/procs.ts';
import { hubMetrics, metricValue, startNodeServer } from '../harness/servers.ts';
import type { Ctx } from '../harness/context.ts';

const MiB = 2 ** 20;
const idle = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function sampleTree(root: number, hub: { port: number; metricsPort?: number }) {
  const procs = processTree(root).map((pid) => ({
    cmd: cmdline(pid),
    rss: kbField(pid, 'VmRSS'),
    pss: kbField(pid, 'Pss', 'smaps_rollup'),
  }));
  // npm in front: the hub is the first process whose command line names a hub entry point; npm is not part of it.
  const at = Math.max(
    0,
    procs.findIndex((p) => /server\/(src\/main\.ts|main\.js)/.test(p.cmd)),
  );
  const sum = (list: typeof procs, k: 'rss' | 'pss') => round(list.reduce((a, p) => a + p[k], 0) / MiB, 1);
  const text = await hubMetrics(hub);
  const m = (name: string) => round(metricValue(text, `hubbub_nodejs_${name}`) / MiB, 1);
  return {
    ...{ rssMiB: sum(procs.slice(at), 'rss'), pssMiB: sum(procs.slice(at), 'pss'), launcherRssMiB: sum(procs.slice(0, at), 'rss') },
    ...{ heapUsedMiB: m('heap_size_used_bytes'), heapTotalMiB: m('heap_size_total_bytes'), externalMiB: m('external_memory_bytes') },
  };
}

/** What a first visit does: the page and its assets, a sign-up, a login, a socket to `ready`. */
async function useOnce(port: number) {
  const base = `http://127.0.0.1:${port}`;
  const html = await (await fetch(`${base}/`)).text();
  for (const [, asset] of html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)) {
    const r = await fetch(base + asset);
    if (!r.ok) throw new Error(`GET ${asset}: ${r.status}`);
    await r.arrayBuffer();
  }
  const call = async (proc: string, input: unknown) => {
    const r = await fetch(`${base}/trpc/${proc}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(input),
    });
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
    ws.on('message', (data) => (JSON.parse(String(data)) as { type: string }).type === 'ready' && (clearTimeout(timer), resolve()));
  });
  ws.close();
  await closed;
}

/** Starts `command` in a fresh DATA_DIR with only `env` (and PATH and HOME, as a shell has), measures it, stops it. */
async function measure(label: string, command: string[], env: Record<string, string> = {}) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-idle-'));
  const t0 = Date.now();
  const home = process.env.HOME ?? os.homedir();
  const hub = await startNodeServer({ name: label, entry: command, env: { HOME: home, DATA_DIR: dataDir, ...env }, readyPath: '/' });
  try {
    const startMs = Date.now() - t0;
    await idle(10_000);
    const started = await sampleTree(hub.pid, hub);
    await useOnce(hub.port);
    await idle(10_000);
    const used = await sampleTree(hub.pid, hub);
    return { label, startMs, started, used };
  } finally {
    await hub.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const NPM_START = ['npm', 'start', '--silent'];
/** The sources through tsx, as `npm start` ran before the production build: the baseline. */
const TSX = [process.execPath, '--import', 'tsx', 'server/src/main.ts'];

export async function idleMemory(ctx: Ctx) {
  const t0 = Date.now();
  const postgres = async () => ({
    DATABASE_URL: await createDatabase(ctx.pg.url),
    REDIS_URL: ctx.redis.url,
    REDIS_PREFIX: `idle${randomBytes(4).toString('hex')}:`,
  });
  ctx.log('idle: npm start (embedded, then PostgreSQL + Redis) …');
  // npm start builds first (prestart); the others then run side by side, a fresh process each.
  const built = await measure('npm start, embedded', NPM_START);
  const [built2, tsx, tsx2] = await Promise.all([
    postgres().then((env) => measure('npm start, PostgreSQL + Redis', NPM_START, env)),
    measure('tsx, embedded', TSX),
    postgres().then((env) => measure('tsx, PostgreSQL + Redis', TSX, env)),
  ]);
  const figures: Record<string, number> = {};
  const runs = { Embedded: built, Postgres: built2, TsxEmbedded: tsx, TsxPostgres: tsx2 };
  for (const [key, r] of Object.entries(runs)) {
    for (const k of ['rss', 'pss', 'heapUsed', 'heapTotal', 'external'] as const)
      figures[`${k}${key}MiB`] = Math.max(r.started[`${k}MiB`], r.used[`${k}MiB`]);
    figures[`start${key}Ms`] = r.startMs;
    const { rssMiB, pssMiB, heapUsedMiB, heapTotalMiB, launcherRssMiB } = r.used;
    ctx.log(
      `  ${r.label}: RSS ${r.started.rssMiB} MiB idle, ${rssMiB} MiB after use (PSS ${pssMiB}, heap ${heapUsedMiB}/${heapTotalMiB}, npm ${launcherRssMiB})`,
    );
  }
  figures.rssEmbeddedVsTsx = round(built.used.rssMiB / tsx.used.rssMiB, 2);
  figures.rssPostgresVsTsx = round(built2.used.rssMiB / tsx2.used.rssMiB, 2);
  figures.npmLauncherRssMiB = built.used.launcherRssMiB;
  ctx.record({
    name: 'idle',
    server: 'Hubbub (npm start, 1 replica)',
    kind: 'hubbub',
    durationS: round((Date.now() - t0) / 1000, 1),
    counters: {},
    figures,
  });
}
