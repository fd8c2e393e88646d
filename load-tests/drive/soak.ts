/**
 * The soak: mixed load with churn against two hub replicas for long enough to see a leak. Sockets live 5 to 30 s (half
 * closed cleanly, half dropped, a resume on every connect), with sends, tRPC calls and logins; each replica's RSS, heap,
 * event-loop delay and connection gauge (against the sockets really open) are sampled, and the gauges must read 0 once
 * every socket is closed.
 */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { createDatabase } from '../../test/helpers/postgres.ts';
import type { Ctx } from '../harness/context.ts';
import { round, rssBytes } from '../harness/procs.ts';
import { seedDatabase } from '../harness/seed.ts';
import { hubEnv, hubMetrics, metricValue, type NodeServer, startHubs } from '../harness/servers.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!;
type Point = { t: number; y: number };
/** Least-squares slope per minute. */
function slopePerMin(points: Point[]) {
  const mean = (f: (p: Point) => number) => points.reduce((a, p) => a + f(p), 0) / points.length;
  const [mt, my] = [mean((p) => p.t), mean((p) => p.y)];
  const den = points.reduce((a, p) => a + (p.t - mt) ** 2, 0);
  return points.length > 1 && den ? (points.reduce((a, p) => a + (p.t - mt) * (p.y - my), 0) / den) * 60 : NaN;
}
/**
 * The lowest point of each minute (of each fifth of a run too short for five minutes): what a leak raises. The heap saws
 * between collections, so a fit to every sample leans on where in a cycle the run stops.
 */
function floors(points: Point[]) {
  const bucket = Math.min(60, ((points.at(-1)?.t ?? 0) - (points[0]?.t ?? 0)) / 5) || 60;
  const low = new Map<number, Point>();
  for (const p of points) {
    const k = Math.floor(p.t / bucket);
    if (!low.has(k) || p.y < low.get(k)!.y) low.set(k, p);
  }
  return [...low.values()];
}

export async function soak(ctx: Ctx) {
  const { soakMinutes, soakUsers, soakSockets, soakSendRate, soakCallRate, soakLoginRate, soakSampleS } = ctx.sizes;
  const durationS = Math.round(soakMinutes * 60);
  const databaseUrl = await createDatabase(ctx.pg.url);
  await ctx.migrate(databaseUrl);
  const seed = await seedDatabase(databaseUrl, ctx.jwtSecret, [{ name: 'rooms', users: soakUsers, roomSize: 5 }]);
  const prefix = `soak${randomBytes(3).toString('hex')}:`;
  const env = hubEnv({ databaseUrl, redisUrl: ctx.redis.url, redisPrefix: prefix, jwtSecret: ctx.jwtSecret, dataDir: ctx.work });
  // Every client comes from 127.0.0.1: the per-IP budget is not under test here.
  const limits = { API_ANON_RATE_PER_S: '100000', API_ANON_RATE_BURST: '100000' };
  const hubs = await startHubs({ replicas: 2, env: { ...env, ...limits }, label: 'Hubbub (2 replicas)' });
  ctx.cleanup(() => hubs.stop());
  const ports = hubs.procs.map((p) => p.port);
  const roomOf = new Map(seed.rooms.flatMap((r) => r.m.map((u) => [u, r.id] as const)));
  const users = seed.users.map((u, i) => ({ ...u, conv: roomOf.get(i) })).filter((u) => u.conv);
  const counts = {
    connects: 0,
    refused: 0,
    sends: 0,
    acks: 0,
    resumed: 0,
    calls: 0,
    callErrors: 0,
    logins: 0,
    loginErrors: 0,
    frameErrors: 0,
    closes: 0,
  };
  const trpc = async (port: number, proc: string, input: unknown, token?: string) => {
    const url = `http://127.0.0.1:${port}/trpc/${proc}`;
    const r = await (token
      ? fetch(`${url}?input=${encodeURIComponent(JSON.stringify(input))}`, { headers: { authorization: `Bearer ${token}` } })
      : fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(input) }));
    await r.arrayBuffer();
    if (!r.ok) throw new Error(`${proc}: HTTP ${r.status}`);
  };

  const open = [new Set<WebSocket>(), new Set<WebSocket>()];
  const cursors = new Map<string, number>();
  const live: { ws: WebSocket; user: (typeof users)[number]; ready: boolean }[] = [];
  let [running, n] = [true, 0];
  const socketLoop = async (slot: number) => {
    await sleep(Math.random() * 5000);
    while (running) {
      const [user, r] = [pick(users), n++ % 2];
      const ws = new WebSocket(`ws://127.0.0.1:${ports[r]}/ws?resume=1`, { headers: { authorization: `Bearer ${user.t}` } });
      const entry = (live[slot] = { ws, user, ready: false as boolean });
      const closed = new Promise<void>((resolve) => {
        ws.on('open', () => {
          counts.connects++;
          open[r]!.add(ws);
          ws.send(JSON.stringify({ type: 'resume', ref: 'r0', convs: { [user.conv!]: cursors.get(user.id) ?? 0 } }));
        });
        ws.on('unexpected-response', () => (counts.refused++, resolve()));
        ws.on('error', () => resolve()); // a refused or dropped socket: the next turn of the loop opens another
        ws.on('message', (data) => {
          const f = JSON.parse(String(data)) as { type: string; seq?: number };
          if (f.type === 'event') cursors.set(user.id, Math.max(cursors.get(user.id) ?? 0, f.seq!));
          else if (f.type === 'resumed') counts.resumed++, (entry.ready = true);
          else if (f.type === 'ack') counts.acks++;
          else if (f.type === 'error') counts.frameErrors++;
        });
        ws.on('close', () => (open[r]!.delete(ws), counts.closes++, resolve()));
      });
      if ((await Promise.race([closed.then(() => 'closed'), sleep(5000 + Math.random() * 25_000)])) !== 'closed') {
        // Half close cleanly, half vanish (a dropped network): neither may leave a count behind.
        if (Math.random() < 0.5) ws.close();
        else ws.terminate();
        await closed;
      }
      await sleep(50 + Math.random() * 500);
    }
  };
  const loops = Array.from({ length: soakSockets }, (_, i) => socketLoop(i));
  const every = (perS: number, f: () => void) =>
    setInterval(() => {
      const k = perS / 10;
      for (let i = 0; i < Math.floor(k) + (Math.random() < k % 1 ? 1 : 0); i++) f();
    }, 100);
  const CALLS: [number, string, (u: (typeof users)[number]) => unknown][] = [
    [0.4, 'conversations.history', (u) => ({ conversationId: u.conv, limit: 50 })],
    [0.7, 'conversations.list', () => undefined],
    [0.9, 'auth.me', () => undefined],
    [1, 'profiles.search', () => ({ query: 'u1' })],
  ];
  const timers = [
    every(soakSendRate, () => {
      const e = pick(live);
      if (!e?.ready || e.ws.readyState !== WebSocket.OPEN) return;
      const body = `soak message ${++counts.sends} ${'x'.repeat(Math.floor(Math.random() * 200))}`;
      e.ws.send(JSON.stringify({ type: 'send', conv: e.user.conv, cid: `s${counts.sends}`, body }));
    }),
    every(soakCallRate, () => {
      const [u, p] = [pick(users), Math.random()];
      const [, proc, input] = CALLS.find(([upTo]) => p < upTo)!;
      counts.calls++;
      trpc(pick(ports), proc, input(u), u.t).catch(() => counts.callErrors++);
    }),
    every(soakLoginRate, () => {
      counts.logins++;
      trpc(pick(ports), 'auth.login', { login: pick(users).u, password: seed.password }).catch(() => counts.loginErrors++);
    }),
  ];

  const t0 = Date.now();
  const samples: { t: number; replica: string; rssMiB: number; heapMiB: number; eldP99Ms: number; gauge: number; open: number }[] = [];
  const metric = async (p: NodeServer, name: string) => metricValue(await hubMetrics(p, name), name);
  const sampleAll = () =>
    Promise.all(
      hubs.procs.map(async (p, i) => {
        // prom-client sets a group of gauges in the collect of its first one (heap total for the heap sizes, the lag
        // itself for its percentiles, which it then resets): asked for first, so each figure is this sample's.
        await metric(p, 'hubbub_nodejs_heap_size_total_bytes');
        const heap = await metric(p, 'hubbub_nodejs_heap_size_used_bytes');
        await metric(p, 'hubbub_nodejs_eventloop_lag_seconds');
        const [eld, gauge] = [await metric(p, 'hubbub_nodejs_eventloop_lag_p99_seconds'), await metric(p, 'hubbub_ws_connections')];
        const t = (Date.now() - t0) / 1000;
        samples.push({
          t,
          replica: `hub ${'ab'[i]}`,
          rssMiB: rssBytes(p.pid) / 2 ** 20,
          heapMiB: heap / 2 ** 20,
          eldP99Ms: eld * 1000,
          gauge,
          open: open[i]!.size,
        });
      }),
    );
  const failed = (err: Error) => ctx.log(`soak: sample failed: ${err.message}`);
  const sampler = setInterval(() => void sampleAll().catch(failed), soakSampleS * 1000);
  const progress = setInterval(() => ctx.log(`soak: ${Math.round((Date.now() - t0) / 1000)} s, ${JSON.stringify(counts)}`), 60_000);
  ctx.log(
    `soak: ${durationS} s, ${soakSockets} sockets over ${users.length} users, ${soakSendRate} sends/s, ${soakCallRate} calls/s, ${soakLoginRate} logins/s`,
  );
  await sleep(durationS * 1000);

  running = false;
  for (const t of [...timers, sampler, progress]) clearInterval(t);
  for (const s of open) for (const ws of s) ws.close();
  await Promise.all(loops);
  await sampleAll();
  let finalGauges: number[] = [];
  for (let i = 0; i < 100; i++, await sleep(100)) {
    finalGauges = await Promise.all(hubs.procs.map((p) => metric(p, 'hubbub_ws_connections')));
    if (finalGauges.every((g) => g === 0)) break;
  }
  await hubs.stop();

  // The last 10 minutes (or the second half of a shorter run), under load: after warm-up, where a leak shows.
  const end = Math.max(...samples.map((s) => s.t));
  const from = end > 20 * 60 ? end - 10 * 60 : end / 2;
  const fit = (points: Point[]) => round(slopePerMin(points), 2);
  const rows = ['hub a', 'hub b'].map((replica) => {
    const mine = samples.filter((s) => s.replica === replica);
    const tail = mine.filter((s) => s.t >= from && s.t <= durationS);
    const eld = tail.map((s) => s.eldP99Ms).sort((a, b) => a - b);
    const [rss, heap] = [tail.map((s) => ({ t: s.t, y: s.rssMiB })), tail.map((s) => ({ t: s.t, y: s.heapMiB }))];
    const drift = Math.max(...mine.map((s) => Math.abs(s.gauge - s.open)));
    const [first, last] = [round(mine[0]?.rssMiB ?? NaN, 1), round(mine.at(-1)?.rssMiB ?? NaN, 1)];
    return [
      replica,
      first,
      last,
      fit(rss),
      fit(floors(rss)),
      fit(heap),
      fit(floors(heap)),
      round(eld[eld.length >> 1] ?? NaN, 1),
      round(eld.at(-1) ?? NaN, 1),
      drift,
    ];
  });
  const worst = (i: number) => Math.max(...rows.map((r) => r[i] as number));
  const head = [
    'replica',
    'RSS start MiB',
    'RSS end MiB',
    'RSS slope MiB/min',
    'RSS floor slope MiB/min',
    'heap slope MiB/min',
    'heap floor slope MiB/min',
  ];
  const facets = (s: (typeof samples)[number]) => ({
    'RSS (MiB)': s.rssMiB,
    'heap used (MiB)': s.heapMiB,
    'event-loop delay p99 (ms)': s.eldP99Ms,
    'gauge − sockets open': s.gauge - s.open,
  });
  ctx.record({
    ...{ name: 'soak', server: hubs.label, kind: 'hubbub', durationS, counters: counts },
    figures: {
      rssFloorSlopeMiBPerMin: worst(4),
      heapFloorSlopeMiBPerMin: worst(6),
      maxGaugeDrift: worst(9),
      finalGauge: Math.max(...finalGauges),
    },
    tables: [
      {
        title: `Soak: ${round(end / 60, 1)} minutes; slopes over t ≥ ${round(from / 60, 1)} min; gauges after every socket closed: ${finalGauges.join(' and ')}`,
        head: [...head, 'event-loop p99 median ms', 'max ms', 'max gauge drift'],
        rows,
      },
    ],
    points: { soak: samples.flatMap((s) => Object.entries(facets(s)).map(([facet, y]) => ({ x: s.t / 60, y, series: s.replica, facet }))) },
  });
}
