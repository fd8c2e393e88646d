/**
 * Soak scenario (not in CI): mixed load with churn against two hub replicas on PostgreSQL and
 * Redis, sampling each hub's RSS, heap and event-loop delay and its connection gauge against
 * the sockets really open, for long enough to see a leak.
 *
 *   npm run soak                                   # 20 minutes, the default sizes
 *   npm run soak -- --duration 60s --sockets 100   # a quick run while developing
 *
 * Output: load-tests/results/soak-<timestamp>.{json,md,svg}. `runSoak(opts)` is the same run
 * for a bench runner.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as vega from 'vega';
import { compile } from 'vega-lite';
import WebSocket from 'ws';
import { startPostgres, createDatabase } from '../test/helpers/postgres.ts';
import { startRedis } from '../test/helpers/redis.ts';
import { spawnReplica, type ProcessReplica } from '../test/helpers/process-replica.ts';

export interface SoakOptions {
  /** Seconds of load. */
  durationS: number;
  /** Registered users (their sockets churn over them). */
  users: number;
  /** Sockets open at once (each lives 5 to 30 s, then a new one takes its place). */
  sockets: number;
  /** Messages sent per second, over all sockets. */
  sendsPerS: number;
  /** tRPC calls per second (history, list, me, search). */
  callsPerS: number;
  /** Logins per second (argon2 on the hubs' hashing threads). */
  loginsPerS: number;
  /** Sampling period, seconds. */
  sampleS: number;
  /** Where the results go. */
  outDir: string;
  log?: (s: string) => void;
}

export const soakDefaults: SoakOptions = {
  durationS: 20 * 60,
  users: 100,
  sockets: 300,
  sendsPerS: 100,
  callsPerS: 20,
  loginsPerS: 1,
  sampleS: 5,
  outDir: path.resolve(import.meta.dirname, 'results'),
};

interface Sample {
  t: number;
  replica: string;
  rssMiB: number;
  heapMiB: number;
  eldP99Ms: number;
  gauge: number;
  open: number;
}

interface User {
  id: string;
  username: string;
  password: string;
  token: string;
  convs: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runSoak(partial: Partial<SoakOptions> = {}) {
  const o: SoakOptions = { ...soakDefaults, ...partial };
  const log = o.log ?? ((s: string) => process.stderr.write(`[soak] ${s}\n`));
  const started = new Date();
  const stamp = started.toISOString().replace(/:/g, '-').replace(/\..*/, '');
  const pg = await startPostgres();
  const redis = await startRedis();
  const replicas: ProcessReplica[] = [];
  const counts = { connects: 0, refused: 0, closesByCode: {} as Record<string, number>, sends: 0, acks: 0, resumes: 0, resumed: 0, calls: 0, callErrors: {} as Record<string, number>, logins: 0, loginErrors: 0, frameErrors: {} as Record<string, number> };
  const samples: Sample[] = [];
  try {
    const env = {
      NODE_ENV: 'production',
      DATABASE_URL: await createDatabase(pg.url),
      REDIS_URL: redis.url,
      REDIS_PREFIX: `soak${randomBytes(3).toString('hex')}:`,
      JWT_SECRET: randomBytes(32).toString('base64url'),
      LOGIN_MAX_PER_IP: '100000',
      LOGIN_MAX_PER_ACCOUNT: '1000',
      // Every client of the soak comes from 127.0.0.1: the per-IP budget is not under test here.
      API_ANON_RATE_PER_S: '100000',
      API_ANON_RATE_BURST: '100000',
      WS_MAX_CONNECTIONS_PER_USER: '1000',
    };
    // One after the other: the first applies the migrations.
    for (const id of ['a', 'b']) replicas.push(await spawnReplica({ ...env, REPLICA_ID: `soak-${id}` }));
    const ports = replicas.map((r) => r.port);
    log(`replicas on ${ports.join(', ')}; registering ${o.users} users`);

    const api = (port: number, procedure: string, input: unknown, token?: string, method: 'GET' | 'POST' = 'POST') => {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (token) headers.authorization = `Bearer ${token}`;
      const url = `http://127.0.0.1:${port}/trpc/${procedure}`;
      const req = method === 'GET' ? fetch(`${url}?input=${encodeURIComponent(JSON.stringify(input))}`, { headers }) : fetch(url, { method, headers, body: JSON.stringify(input) });
      return req.then(async (r) => {
        const body = (await r.json()) as { result?: { data: any }; error?: { data?: { code?: string } } };
        if (!r.ok) throw new Error(body.error?.data?.code ?? `HTTP ${r.status}`);
        return body.result!.data;
      });
    };

    const users: User[] = [];
    for (let i = 0; i < o.users; i++) {
      const username = `soak_${i}_${randomBytes(2).toString('hex')}`;
      const password = `soak password ${i}`;
      const r = await api(ports[i % 2]!, 'auth.register', { email: `${username}@example.com`, username, password });
      users.push({ id: r.user.id, username, password, token: r.accessToken, convs: [] });
    }
    // Rooms of 5.
    for (let i = 0; i + 4 < users.length; i += 5) {
      const members = users.slice(i, i + 5);
      const conv = await api(ports[0]!, 'conversations.createGroup', { title: `room ${i / 5}`, memberIds: members.slice(1).map((u) => u.id) }, members[0]!.token);
      for (const m of members) m.convs.push(conv.id);
    }
    // Access tokens live 15 minutes: refresh them all every 10.
    const refreshTokens = async () => {
      for (let i = 0; i < users.length; i++) {
        const u = users[i]!;
        try {
          u.token = (await api(ports[i % 2]!, 'auth.login', { login: u.username, password: u.password })).accessToken;
        } catch {
          counts.loginErrors++;
        }
      }
    };

    // ---- sockets with churn ---------------------------------------------------------------
    const open = [new Set<WebSocket>(), new Set<WebSocket>()];
    const cursors = new Map<string, Record<string, number>>(); // user id → conv → last seq seen
    let running = true;
    let nextSocket = 0;
    const live: { ws: WebSocket; user: User; ready: boolean }[] = [];
    const socketLoop = async (slot: number) => {
      while (running) {
        const user = users[Math.floor(Math.random() * users.length)]!;
        const r = nextSocket++ % 2;
        const ws = new WebSocket(`ws://127.0.0.1:${ports[r]}/ws?resume=1`, { headers: { authorization: `Bearer ${user.token}` } });
        const entry = { ws, user, ready: false };
        const closed = new Promise<void>((resolve) => {
          ws.on('open', () => {
            counts.connects++;
            open[r]!.add(ws);
            counts.resumes++;
            ws.send(JSON.stringify({ type: 'resume', ref: 'r0', convs: cursors.get(user.id) ?? Object.fromEntries(user.convs.map((c) => [c, 0])) }));
          });
          ws.on('unexpected-response', () => {
            counts.refused++;
            resolve();
          });
          ws.on('error', () => resolve());
          ws.on('message', (data) => {
            const f = JSON.parse(String(data));
            if (f.type === 'event') {
              const cur = cursors.get(user.id) ?? {};
              cur[f.conv] = Math.max(cur[f.conv] ?? 0, f.seq);
              cursors.set(user.id, cur);
            } else if (f.type === 'resumed') {
              counts.resumed++;
              entry.ready = true;
            } else if (f.type === 'ack') counts.acks++;
            else if (f.type === 'error') counts.frameErrors[f.code] = (counts.frameErrors[f.code] ?? 0) + 1;
          });
          ws.on('close', (code) => {
            open[r]!.delete(ws);
            counts.closesByCode[code] = (counts.closesByCode[code] ?? 0) + 1;
            resolve();
          });
        });
        live[slot] = entry;
        const lifetime = 5000 + Math.random() * 25_000;
        const end = await Promise.race([closed.then(() => 'closed'), sleep(lifetime).then(() => 'lived')]);
        if (end === 'lived') {
          // Half close cleanly, half vanish (a dropped network): both must leave no count behind.
          if (Math.random() < 0.5) ws.close();
          else ws.terminate();
          await closed;
        }
        await sleep(50 + Math.random() * 500);
      }
    };
    const loops = Array.from({ length: o.sockets }, (_, i) => sleep(Math.random() * 5000).then(() => socketLoop(i)));

    // ---- senders, API calls, logins -------------------------------------------------------
    let cid = 0;
    const tick = 100;
    const sender = setInterval(() => {
      const n = (o.sendsPerS * tick) / 1000;
      for (let i = 0; i < n + (Math.random() < n % 1 ? 1 : 0); i++) {
        const e = live[Math.floor(Math.random() * live.length)];
        if (!e || !e.ready || e.ws.readyState !== WebSocket.OPEN || !e.user.convs.length) continue;
        const conv = e.user.convs[Math.floor(Math.random() * e.user.convs.length)]!;
        e.ws.send(JSON.stringify({ type: 'send', conv, cid: `s${cid++}`, body: `soak message ${cid} ${'x'.repeat(Math.floor(Math.random() * 200))}` }));
        counts.sends++;
      }
    }, tick);
    const caller = setInterval(() => {
      const n = (o.callsPerS * tick) / 1000;
      for (let i = 0; i < n + (Math.random() < n % 1 ? 1 : 0); i++) {
        const u = users[Math.floor(Math.random() * users.length)]!;
        const port = ports[Math.floor(Math.random() * 2)]!;
        const pick = Math.random();
        const p =
          pick < 0.4 && u.convs.length
            ? api(port, 'conversations.history', { conversationId: u.convs[0], limit: 50 }, u.token, 'GET')
            : pick < 0.7
              ? api(port, 'conversations.list', undefined, u.token, 'GET')
              : pick < 0.9
                ? api(port, 'auth.me', undefined, u.token, 'GET')
                : api(port, 'profiles.search', { query: 'soak' }, u.token, 'GET');
        counts.calls++;
        p.catch((err: Error) => (counts.callErrors[err.message] = (counts.callErrors[err.message] ?? 0) + 1));
      }
    }, tick);
    const loginer = setInterval(() => {
      const u = users[Math.floor(Math.random() * users.length)]!;
      counts.logins++;
      api(ports[Math.floor(Math.random() * 2)]!, 'auth.login', { login: u.username, password: u.password }).catch(() => counts.loginErrors++);
    }, 1000 / o.loginsPerS);
    const refresher = setInterval(() => void refreshTokens(), 10 * 60_000);

    // ---- sampling -------------------------------------------------------------------------
    const t0 = Date.now();
    const metric = async (metricsPort: number, name: string) => {
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics?name=${name}`)).text();
      const line = text.split('\n').find((l) => l.startsWith(name));
      return line ? Number(line.split(' ').pop()) : NaN;
    };
    const sample = async () => {
      await Promise.all(
        replicas.map(async (rep, i) => {
          const status = readFileSync(`/proc/${rep.child.pid}/status`, 'utf8');
          const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
          // prom-client sets a group of gauges in the collect of its first one (heap total for
          // the heap sizes, the lag itself for its percentiles, which it then resets): ask for
          // that one first, so the figures are this sample's (the event-loop delay p99 is over
          // the last sampling period).
          await metric(rep.metricsPort, 'hubbub_nodejs_heap_size_total_bytes');
          const heap = await metric(rep.metricsPort, 'hubbub_nodejs_heap_size_used_bytes');
          await metric(rep.metricsPort, 'hubbub_nodejs_eventloop_lag_seconds');
          const eld = await metric(rep.metricsPort, 'hubbub_nodejs_eventloop_lag_p99_seconds');
          const gauge = await metric(rep.metricsPort, 'hubbub_ws_connections');
          samples.push({ t: (Date.now() - t0) / 1000, replica: `hub ${'ab'[i]}`, rssMiB: rssKiB / 1024, heapMiB: heap / 2 ** 20, eldP99Ms: eld * 1000, gauge, open: open[i]!.size });
        }),
      );
    };
    const sampler = setInterval(() => void sample().catch((err) => log(`sample failed: ${(err as Error).message}`)), o.sampleS * 1000);
    const progress = setInterval(() => {
      const last = samples.slice(-2);
      log(`${Math.round((Date.now() - t0) / 1000)} s: ${counts.connects} connects, ${counts.acks}/${counts.sends} acked, ${counts.calls} calls; ${last.map((s) => `${s.replica} rss ${s.rssMiB.toFixed(0)} MiB gauge ${s.gauge}/${s.open}`).join(', ')}`);
    }, 60_000);
    log(`load for ${o.durationS} s: ${o.sockets} sockets churning over ${o.users} users, ${o.sendsPerS} sends/s, ${o.callsPerS} calls/s, ${o.loginsPerS} logins/s`);
    await sleep(o.durationS * 1000);

    // ---- wind down: every socket closed, the gauges must reach 0 --------------------------
    running = false;
    for (const t of [sender, caller, loginer, refresher, sampler, progress]) clearInterval(t);
    for (const s of open) for (const ws of s) ws.close();
    await Promise.all(loops);
    await sample();
    let finalGauges: number[] = [];
    for (let i = 0; i < 100; i++) {
      finalGauges = await Promise.all(replicas.map((r) => metric(r.metricsPort, 'hubbub_ws_connections')));
      if (finalGauges.every((g) => g === 0)) break;
      await sleep(100);
    }
    return writeResults({ o, stamp, started, samples, counts, finalGauges, log });
  } finally {
    for (const r of replicas) await r.kill('SIGTERM').catch(() => null);
    await redis.stop().catch(() => {});
    await pg.stop().catch(() => {});
  }
}

/** Least-squares slope of y over t (per minute). */
function slopePerMin(points: { t: number; y: number }[]) {
  const n = points.length;
  if (n < 2) return NaN;
  const mt = points.reduce((a, p) => a + p.t, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - mt) * (p.y - my);
    den += (p.t - mt) ** 2;
  }
  return den ? (num / den) * 60 : NaN;
}

async function writeResults(r: { o: SoakOptions; stamp: string; started: Date; samples: Sample[]; counts: Record<string, unknown>; finalGauges: number[]; log: (s: string) => void }) {
  const { o, samples } = r;
  const replicas = [...new Set(samples.map((s) => s.replica))];
  const end = Math.max(...samples.map((s) => s.t));
  // The last 10 minutes (or the second half of a shorter run): after warm-up, where a leak shows.
  const from = end > 20 * 60 ? end - 10 * 60 : end / 2;
  const rows = replicas.map((rep) => {
    const mine = samples.filter((s) => s.replica === rep);
    // Under load only: the sample after the wind-down is not part of the trend.
    const tail = mine.filter((s) => s.t >= from && s.t <= o.durationS);
    const drift = Math.max(...mine.map((s) => Math.abs(s.gauge - s.open)));
    const eld = tail.map((s) => s.eldP99Ms).sort((a, b) => a - b);
    return {
      replica: rep,
      rssStart: mine[0]?.rssMiB ?? NaN,
      rssEnd: mine.at(-1)?.rssMiB ?? NaN,
      rssSlope: slopePerMin(tail.map((s) => ({ t: s.t, y: s.rssMiB }))),
      // The heap saws between collections, so a fit to every sample leans on where the run stops;
      // the floor (each minute's lowest sample) is what a leak would raise.
      rssFloorSlope: slopePerMin(floors(tail, (s) => s.rssMiB)),
      heapFloorSlope: slopePerMin(floors(tail, (s) => s.heapMiB)),
      heapSlope: slopePerMin(tail.map((s) => ({ t: s.t, y: s.heapMiB }))),
      eldMedian: eld[Math.floor(eld.length / 2)] ?? NaN,
      eldMax: eld.at(-1) ?? NaN,
      drift,
    };
  });
  const long = samples.flatMap((s) => [
    { t: s.t / 60, replica: s.replica, metric: 'RSS (MiB)', value: s.rssMiB },
    { t: s.t / 60, replica: s.replica, metric: 'heap used (MiB)', value: s.heapMiB },
    { t: s.t / 60, replica: s.replica, metric: 'event-loop delay p99 (ms)', value: s.eldP99Ms },
    { t: s.t / 60, replica: s.replica, metric: 'gauge − sockets open', value: s.gauge - s.open },
  ]);
  const vl = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `Hubbub soak ${r.stamp}: ${o.sockets} churning sockets, ${o.sendsPerS} sends/s, ${o.callsPerS} calls/s, ${o.loginsPerS} logins/s, 2 replicas`,
    data: { values: long },
    facet: { row: { field: 'metric', type: 'nominal', title: null } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 720,
      height: 140,
      mark: { type: 'line', interpolate: 'monotone' },
      encoding: {
        x: { field: 't', type: 'quantitative', title: 'minutes' },
        y: { field: 'value', type: 'quantitative', title: null },
        color: { field: 'replica', type: 'nominal' },
      },
    },
  };
  const base = path.join(o.outDir, `soak-${r.stamp}`);
  mkdirSync(o.outDir, { recursive: true });
  const svg = await new vega.View(vega.parse(compile(vl as never).spec), { renderer: 'none' }).toSVG();
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
  const md = [
    `# Soak ${r.stamp}`,
    '',
    `${f(end / 60)} minutes against two hub replicas (PostgreSQL, Redis, separate processes) on this machine, which is shared with other engineers' tests and builds: absolute figures are noisy, the slopes and the gauges are what this run is for.`,
    `Load: ${o.sockets} sockets open at once churning over ${o.users} users (each lives 5-30 s, half closed cleanly, half dropped), a resume on every connect, ${o.sendsPerS} sends/s, ${o.callsPerS} tRPC calls/s (history, list, me, search), ${o.loginsPerS} logins/s; sampled every ${o.sampleS} s.`,
    '',
    `| replica | RSS start → end (MiB) | RSS slope, t ≥ ${f(from / 60)} min, all samples / per-minute floor (MiB/min) | heap slope, all / floor (MiB/min) | event-loop delay p99, median / max (ms) | max gauge drift |`,
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map((x) => `| ${x.replica} | ${f(x.rssStart)} → ${f(x.rssEnd)} | ${f(x.rssSlope, 2)} / ${f(x.rssFloorSlope, 2)} | ${f(x.heapSlope, 2)} / ${f(x.heapFloorSlope, 2)} | ${f(x.eldMedian)} / ${f(x.eldMax)} | ${x.drift} |`),
    '',
    'The heap saws between garbage collections (about 25 to 90 MiB here), so the fit to every sample depends on where in a cycle the run ends; the per-minute floor (lowest sample of each minute) is what a leak would raise.',
    '',
    `Gauge drift is |hubbub_ws_connections − sockets the soak holds open| at each sample (sockets in the middle of opening or closing count as a difference of a few). After the load every socket was closed; the gauges then read ${r.finalGauges.join(' and ')}.`,
    '',
    `Counts: \`${JSON.stringify(r.counts)}\``,
    '',
    `Chart: \`soak-${r.stamp}.svg\`; samples: \`soak-${r.stamp}.json\`.`,
    '',
  ].join('\n');
  writeFileSync(`${base}.svg`, svg);
  writeFileSync(`${base}.md`, md);
  writeFileSync(`${base}.json`, JSON.stringify({ options: { ...o, log: undefined }, started: r.started, counts: r.counts, finalGauges: r.finalGauges, summary: rows, samples }, null, 1));
  r.log(`wrote ${base}.{md,svg,json}`);
  return { files: [`${base}.md`, `${base}.svg`, `${base}.json`], summary: rows, finalGauges: r.finalGauges, counts: r.counts };
}

/** The lowest sample of each minute. */
function floors(samples: Sample[], y: (s: Sample) => number) {
  const byMin = new Map<number, { t: number; y: number }>();
  for (const s of samples) {
    const m = Math.floor(s.t / 60);
    const cur = byMin.get(m);
    if (!cur || y(s) < cur.y) byMin.set(m, { t: s.t, y: y(s) });
  }
  return [...byMin.values()];
}

/** Writes the summary and chart again from a run's JSON (after a change to the report). */
export async function renderSoak(jsonFile: string, log: (s: string) => void = (s) => process.stderr.write(`[soak] ${s}\n`)) {
  const j = JSON.parse(readFileSync(jsonFile, 'utf8'));
  const stamp = path.basename(jsonFile).replace(/^soak-/, '').replace(/\.json$/, '');
  return writeResults({ o: { ...soakDefaults, ...j.options, outDir: path.dirname(jsonFile) }, stamp, started: new Date(j.started), samples: j.samples, counts: j.counts, finalGauges: j.finalGauges, log });
}

function seconds(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(s);
  if (!m) throw new Error(`bad duration ${s} (e.g. 90s, 20m)`);
  return Number(m[1]) * ({ s: 1, m: 60, h: 3600 }[m[2] ?? 's'] ?? 1);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string' },
      users: { type: 'string' },
      sockets: { type: 'string' },
      sends: { type: 'string' },
      calls: { type: 'string' },
      logins: { type: 'string' },
      sample: { type: 'string' },
      out: { type: 'string' },
      render: { type: 'string' },
    },
  });
  const opts: Partial<SoakOptions> = {};
  if (values.duration) opts.durationS = seconds(values.duration);
  if (values.users) opts.users = Number(values.users);
  if (values.sockets) opts.sockets = Number(values.sockets);
  if (values.sends) opts.sendsPerS = Number(values.sends);
  if (values.calls) opts.callsPerS = Number(values.calls);
  if (values.logins) opts.loginsPerS = Number(values.logins);
  if (values.sample) opts.sampleS = Number(values.sample);
  if (values.out) opts.outDir = path.resolve(values.out);
  (values.render ? renderSoak(path.resolve(values.render)) : runSoak(opts))
    .then((r) => {
      process.stdout.write(readFileSync(r.files[0]!, 'utf8'));
      const drift = r.finalGauges.some((g) => g !== 0);
      process.exit(drift ? 1 : 0);
    })
    .catch((err) => {
      process.stderr.write(`soak failed: ${(err as Error).stack ?? err}\n`);
      process.exit(1);
    });
}
