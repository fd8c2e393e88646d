/**
 * The drives of the scenarios the load generator runs (connect, fanout, login, api, reconnect, persist, store, connscale):
 * each builds its jobs, runs the generator while sampling the servers' CPU and RSS every 500 ms and exactly at the
 * measured window's edges, and records its figures.
 */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { runGenerator, shares, type GenResult, type JobSpec } from '../gen/runner.ts';
import { cpuDelta, maxOpenFiles, round, rssBytes, sample, type Sample, type Watched } from '../harness/procs.ts';
import type { ScenarioResult } from '../harness/report.ts';
import { hubMetrics, metricValue, startHubs, type ServerSet } from '../harness/servers.ts';
import { hubStages } from '../harness/hub-stages.ts';
import type { Rooms, SeedFile } from '../harness/seed.ts';
import type { Ctx } from '../scenarios.ts';
import { freePort } from '../../test/helpers/ports.ts';

const runId = () => randomBytes(4).toString('hex');
export const serverWatch = (set: ServerSet): Watched => ({ name: 'server', pids: () => set.procs.map((p) => p.pid) });
const perK = (cpuS: number, n: number) => (n > 0 ? round((cpuS * 1e6) / n, 1) : null);

interface Driven {
  gen: GenResult;
  samples: Sample[];
  window: { before: Sample; after: Sample; s: number } | null;
  durationS: number;
}
type OpenWindow = (at: number, s: number) => void;

/**
 * Runs `jobs` against `set`. `onBarrier` says when each phase starts, and may call `openWindow(at, s)` to have the
 * watched processes sampled exactly at `at` and `at + s` (the measured window).
 */
export async function drive(
  ctx: Ctx,
  set: ServerSet,
  watch: Watched[],
  jobs: JobSpec[],
  onBarrier: (name: string, open: OpenWindow) => Promise<number | void> | number | void,
  timeoutS: number,
) {
  const stats = set.kind === 'hubbub' ? ctx.pgStats : null;
  await stats?.reset();
  const started = Date.now();
  const samples = [sample(watch)];
  const every = setInterval(() => samples.push(sample(watch)), 500);
  type Win = NonNullable<Driven['window']> & { done: boolean };
  let w: Win | null = null;
  const timers: NodeJS.Timeout[] = [];
  const open: OpenWindow = (at, s) => {
    const win: Win = { before: sample(watch), after: sample(watch), s, done: false };
    w = win;
    timers.push(setTimeout(() => (win.before = sample(watch)), Math.max(0, at - Date.now())));
    timers.push(setTimeout(() => ((win.after = sample(watch)), (win.done = true)), Math.max(0, at + s * 1000 - Date.now())));
  };
  try {
    const gen = await runGenerator({
      jobs,
      onBarrier: (name) => onBarrier(name, open),
      timeoutMs: timeoutS * 1000,
      log: (l) => ctx.log(`  ${l}`),
    });
    const win = w as Win | null;
    if (win && !win.done) win.after = sample(watch);
    samples.push(sample(watch));
    const run: Driven = { gen, samples, window: win, durationS: (Date.now() - started) / 1000 };
    return { run, pgStatements: await stats?.top() };
  } finally {
    clearInterval(every);
    timers.forEach(clearTimeout);
  }
}

/**
 * Records a generator scenario: figures, counters, histograms, CPU of every group and of the generator, server logs.
 * `generator` false: the process is the system under test (the store's writer), whose event loop grades nothing.
 */
function record(
  ctx: Ctx,
  name: string,
  set: ServerSet,
  d: Awaited<ReturnType<typeof drive>>,
  figures: ScenarioResult['figures'],
  cost: Record<string, number | null>,
  generator = true,
) {
  const { run } = d;
  const peakRssMiB: Record<string, number> = {};
  for (const s of run.samples)
    for (const [k, v] of Object.entries(s.rss)) peakRssMiB[k] = Math.max(peakRssMiB[k] ?? 0, round(v / 2 ** 20, 1));
  const g = run.gen.generator;
  const s: ScenarioResult = {
    name,
    server: set.label,
    kind: set.kind,
    durationS: round(run.durationS, 1),
    cpuS: { ...cpuDelta(run.samples[0]!, run.samples.at(-1)!), [generator ? 'generator' : 'writer']: round(g.totalCpuS, 3) },
    windowCpuS: run.window
      ? { ...cpuDelta(run.window.before, run.window.after), [generator ? 'generator' : 'writer']: round(g.windowCpuS, 3) }
      : undefined,
    windowS: run.window ? round(run.window.s, 1) : undefined,
    peakRssMiB,
    counters: run.gen.counters,
    hists: run.gen.hists,
    distributions: run.gen.distributions,
    figures: generator ? { ...figures, generatorEldP99Ms: g.eldP99Ms, generatorEldMaxMs: g.eldMaxMs } : figures,
    generator: generator ? { ...g, ...cost } : undefined,
    timeline: run.gen.timeline.length ? run.gen.timeline : undefined,
    generatorLogs: run.gen.logs.length ? run.gen.logs.slice(0, 20) : undefined,
    pgStatements: d.pgStatements,
  };
  // What the servers logged at warn or above during the run.
  for (const p of set.procs) {
    const lines = p.logs.splice(0);
    if (!lines.length) continue;
    ctx.log(
      `  ${p.name} logged ${lines.length} line(s); last: ${lines
        .slice(-3)
        .map((l) => l.slice(0, 400))
        .join(' | ')}`,
    );
    (s.serverLogs ??= []).push(...lines.slice(-20).map((l) => `${p.name}: ${l.slice(0, 1000)}`));
  }
  ctx.record(s);
  if (generator) ctx.log(`  generator: ${JSON.stringify(s.generator)}`);
}

/** Rooms over the generator processes (each owns whole rooms); members alternate between the replicas. */
function roomJobs(ctx: Ctx, set: ServerSet, rooms: Rooms, seed = ctx.seed) {
  return shares(
    rooms.map((r, i) => ({ r, i })),
    ctx.sizes.genProcs,
  ).map((share) => ({
    share: share.length,
    rooms: share.map(({ r, i }) => ({
      id: r.id,
      members: r.m.map((ui, k) => ({ url: set.urls[(i + k) % set.urls.length]!, token: seed.users[ui]!.t })),
    })),
    proto: set.kind,
    runId: runId(),
    connectTimeoutS: ctx.sizes.connectTimeoutS,
    handshakeTimeoutMs: ctx.sizes.handshakeTimeoutMs,
  }));
}

type FanoutOptions = { seed?: SeedFile; rooms?: Rooms; rate?: number; durationS?: number; window?: number; senders?: 'first' | 'rotate' };
export function fanoutJobs(ctx: Ctx, set: ServerSet, o: FanoutOptions = {}): JobSpec[] {
  const { sizes } = ctx;
  const rooms = o.rooms ?? ctx.seed.rooms;
  const rate = o.rate ?? sizes.fanoutRate;
  return roomJobs(ctx, set, rooms, o.seed).map(({ share, ...j }) => ({
    ...j,
    kind: 'fanout',
    mode: o.window ? 'max' : 'rate',
    rate: (rate * share) / rooms.length, // every room gets the same rate
    window: o.window ?? 0,
    senders: o.senders ?? (o.window ? 'first' : 'rotate'),
    durationS: o.durationS ?? sizes.fanoutS,
    drainS: sizes.drainS,
    bodySize: sizes.bodySize,
  }));
}

/** Rooms of 2, one writer per room keeping `persistWindow` sends in flight (closed loop). */
export const persistJobs = (ctx: Ctx, set: ServerSet) =>
  fanoutJobs(ctx, set, { rooms: ctx.seed.prooms, durationS: ctx.sizes.persistS, window: ctx.sizes.persistWindow });

function apiJob(ctx: Ctx, set: ServerSet, loginRate: number, historyRate: number, durationS: number): JobSpec {
  const { seed, quick } = ctx;
  return {
    kind: 'api',
    bases: set.urls.map((x) => x.replace(/^ws/, 'http').replace(/\/ws$/, '')),
    ...{ loginRate, historyRate, durationS, password: seed.password, logins: seed.users.map((x) => x.u) },
    histories: seed.rooms.map((r, i) => ({ conv: r.id, token: seed.users[r.m[i % r.m.length]!]!.t })),
    // Full runs: as many calls in flight as the previous generator had virtual users for them. Quick runs (a shared CI
    // box) allow 5 s of backlog, so that slowness shows as latency, not drops.
    maxInFlight: quick
      ? { login: loginRate * 5, history: historyRate * 5 }
      : { login: Math.max(8, loginRate), history: Math.max(16, Math.ceil(historyRate / 2)) },
  };
}

/** The fanout workload of `jobs`, and with `loginRate` logins during the send window. */
export async function fanout(ctx: Ctx, name: string, set: ServerSet, watch: Watched[], jobs: JobSpec[], loginRate = 0) {
  const j = jobs[0] as Extract<JobSpec, { kind: 'fanout' }>;
  const rooms = jobs.reduce((a, x) => a + (x as typeof j).rooms.length, 0);
  ctx.log(
    `${set.label}: ${name} (${rooms} rooms, ${j.mode === 'max' ? `window ${j.window}/room` : `${jobs.reduce((a, x) => a + (x as typeof j).rate, 0)} sends/s`}, ${j.durationS}s${loginRate ? `, logins ${loginRate}/s` : ''}) …`,
  );
  const all = loginRate ? [...jobs, apiJob(ctx, set, loginRate, 0, j.durationS)] : jobs;
  const timeoutS = ctx.sizes.connectTimeoutS + j.durationS + ctx.sizes.drainS + 120;
  const stages = set.kind === 'hubbub' ? hubStages(set) : null;
  // The send window plus 500 ms for the last deliveries, for the servers as for the generator.
  const d = await drive(
    ctx,
    set,
    watch,
    all,
    (barrier, open) =>
      barrier === 'ready'
        ? (open(Date.now() + 500, j.durationS + 0.5), stages?.window(Date.now() + 500, j.durationS + 0.5), Date.now() + 500)
        : undefined,
    timeoutS,
  );
  const { gen, window } = d.run;
  const c = gen.counters;
  const delivered = c.fanout_delivered ?? 0;
  const cpu = window ? cpuDelta(window.before, window.after) : {};
  const serverCpu = cpu.server ?? NaN;
  // Hubs (or peers), PostgreSQL and Redis: what a delivery costs the whole server side.
  const allServerCpu = serverCpu + (cpu.postgres ?? 0) + (cpu.redis ?? 0);
  const lat = gen.hists.fanout_latency;
  const figures = {
    ackedPerS: round((c.fanout_acked ?? 0) / j.durationS, 0),
    deliveredPerS: round(delivered / j.durationS, 0),
    deliveriesPerServerCpuS: round(delivered / serverCpu, 0),
    serverCpuPct: round((serverCpu / (window?.s ?? j.durationS)) * 100, 0),
    serverCpuMsPer1k: perK(serverCpu, delivered),
    latencyP50: lat?.p50 ?? null,
    latencyP99: lat?.p99 ?? null,
    latencyP999: lat?.p999 ?? null,
    latencyMax: lat?.max ?? null,
    deliveriesPerAllServerCpuS: round(delivered / allServerCpu, 0),
    pgCpuUsPerAppend: c.fanout_acked ? round(((cpu.postgres ?? NaN) * 1e6) / c.fanout_acked, 1) : null,
    redisCpuUsPerSend: c.fanout_acked ? round(((cpu.redis ?? NaN) * 1e6) / c.fanout_acked, 1) : null,
    ackP99: gen.hists.fanout_ack?.p99 ?? null,
    sendLatenessP99: gen.hists.fanout_send_lateness?.p99 ?? null,
    loginP99: gen.hists.login_duration?.p99 ?? null,
    connectP99: gen.hists.fanout_connect_time?.p99 ?? null,
  };
  const stageFigures = stages ? await stages.figures() : {};
  if (stages) ctx.log(`  hub stages (ms): ${JSON.stringify(stageFigures)}`);
  record(ctx, name, set, d, { ...figures, ...stageFigures }, { msPer1kDeliveries: perK(gen.generator.windowCpuS, delivered) });
  return d.run;
}

/** N sockets at once over the replicas, each counted once `resumed`; held, then closed. RSS per socket. */
export async function connect(ctx: Ctx, set: ServerSet, watch: Watched[]) {
  const { sizes, seed } = ctx;
  const n = Math.min(sizes.connectN, seed.users.length);
  ctx.log(`${set.label}: connect (${n} sockets) …`);
  const sockets = seed.users.slice(0, n).map((x, i) => ({ url: set.urls[i % set.urls.length]!, token: x.t }));
  const jobs: JobSpec[] = shares(sockets, sizes.genProcs).map((share) => ({
    kind: 'connect',
    proto: set.kind,
    sockets: share,
    connectTimeoutS: sizes.connectTimeoutS,
    handshakeTimeoutMs: sizes.handshakeTimeoutMs,
  }));
  const before = sample(watch);
  let at: Sample | null = null;
  let held = 0;
  const d = await drive(
    ctx,
    set,
    watch,
    jobs,
    async (barrier) => {
      if (barrier === 'ready') return Date.now() + 300;
      // Every socket resumed (or given up on): wait until the servers count them all, sample, hold.
      for (const deadline = Date.now() + 5000; (held = await set.connections()) < n && Date.now() < deadline; )
        await new Promise((r) => setTimeout(r, 200));
      at = sample(watch);
      await new Promise((r) => setTimeout(r, sizes.holdS * 1000));
      return Date.now();
    },
    sizes.connectTimeoutS + sizes.holdS + 120,
  );
  const peak = at as Sample | null;
  const { gen, samples } = d.run;
  const ok = gen.counters.connect_ok ?? 0;
  const ct = gen.hists.connect_time;
  const mib = (s: Sample | null) => (s ? round((s.rss.server ?? 0) / 2 ** 20, 1) : null);
  const figures = {
    connections: held,
    expected: n,
    missing: n - ok,
    rssPerConnKiB: peak && held > 0 ? round(((peak.rss.server ?? 0) - (before.rss.server ?? 0)) / held / 1024, 2) : null,
    rssBeforeMiB: mib(before),
    rssAtPeakMiB: mib(peak),
    serverCpuMsPerConn: round(((cpuDelta(samples[0]!, samples.at(-1)!).server ?? NaN) * 1000) / n, 3),
    ...{ connectP50: ct?.p50 ?? null, connectP95: ct?.p95 ?? null, connectP99: ct?.p99 ?? null },
  };
  record(ctx, 'connect', set, d, figures, { msPerSocket: ok ? round((gen.generator.totalCpuS * 1000) / ok, 3) : null });
}

/** auth.login and conversations.history at constant arrival rates (open loop). */
export async function api(ctx: Ctx, set: ServerSet, watch: Watched[]) {
  const { loginRate, historyRate, apiS } = ctx.sizes;
  ctx.log(`${set.label}: api (login ${loginRate}/s, history ${historyRate}/s, ${apiS}s) …`);
  const d = await drive(
    ctx,
    set,
    watch,
    [apiJob(ctx, set, loginRate, historyRate, apiS)],
    (_b, open) => (open(Date.now() + 300, apiS + 0.5), Date.now() + 300),
    apiS + 120,
  );
  const { counters: c, hists } = d.run.gen;
  const [l, h] = [hists.login_duration, hists.history_duration];
  const calls = (c.login_ok ?? 0) + (c.login_failed ?? 0) + (c.history_ok ?? 0) + (c.history_failed ?? 0);
  const figures = {
    loginP50: l?.p50 ?? null,
    loginP99: l?.p99 ?? null,
    logins: l?.count ?? 0,
    historyP50: h?.p50 ?? null,
    historyP99: h?.p99 ?? null,
    historyCalls: h?.count ?? 0,
  };
  record(ctx, 'api', set, d, figures, { msPerCall: calls ? round((d.run.gen.generator.totalCpuS * 1000) / calls, 3) : null });
}

/** Every member socket dropped at one instant and reopened, resuming from its last seq, while senders send 3 more. */
export async function reconnect(ctx: Ctx, set: ServerSet, watch: Watched[]) {
  const { sizes } = ctx;
  const rooms = ctx.seed.rooms.slice(0, sizes.reconnectRooms);
  const members = rooms.reduce((a, r) => a + r.m.length, 0);
  ctx.log(`${set.label}: reconnect (${rooms.length} rooms, ${members} sockets dropped at once) …`);
  const jobs: JobSpec[] = roomJobs(ctx, set, rooms).map(({ share: _, ...j }) => ({
    ...j,
    kind: 'reconnect',
    warm: 2,
    missed: 3,
    live: 1,
    resumeTimeoutS: sizes.resumeTimeoutS,
  }));
  let dropAt = 0;
  const d = await drive(
    ctx,
    set,
    watch,
    jobs,
    (_b, open) => {
      const warmAt = Date.now() + 500;
      dropAt = warmAt + 2000;
      open(dropAt, sizes.resumeTimeoutS + 30); // from the drop to the end of the storm (closed when the generator finishes)
      return warmAt;
    },
    sizes.connectTimeoutS + sizes.resumeTimeoutS + 120,
  );
  const { gen, window } = d.run;
  if (window) window.s = round((window.after.at - dropAt) / 1000, 1);
  const [fm, rt] = [gen.hists.reconnect_first_message, gen.hists.reconnect_resume_time];
  const figures = {
    resumed: gen.counters.reconnect_resumed ?? 0,
    members,
    ...{ firstMessageP50: fm?.p50 ?? null, firstMessageP99: fm?.p99 ?? null, resumedP50: rt?.p50 ?? null, resumedP99: rt?.p99 ?? null },
    retries: gen.counters.reconnect_retries ?? 0,
    // When the generator got round to sending the missed messages: the floor under every first-message time.
    missedSentMaxMs: gen.hists.reconnect_missed_sent?.max ?? null,
  };
  record(ctx, 'reconnect', set, d, figures, { msPerSocket: members ? round((gen.generator.totalCpuS * 1000) / members, 3) : null });
}

/** The write path alone: the hub's EventWriter and message store in a generator process, no sockets. */
export async function store(ctx: Ctx, label: string, env: Record<string, string>, watch: Watched[]) {
  const { storeProducers: producers, storeConvs: convs, storeS: durationS, bodySize } = ctx.sizes;
  ctx.log(`${label}: store, ${producers} writers over ${convs} conversations, ${durationS}s …`);
  const set: ServerSet = { kind: 'hubbub', label, procs: [], urls: [], connections: async () => 0, stop: async () => {} };
  const d = await drive(
    ctx,
    set,
    watch,
    [{ kind: 'store', env, convs, producers, durationS, bodySize }],
    (_b, open) => (open(Date.now() + 100, durationS), Date.now() + 100),
    durationS + 120,
  );
  const { counters, hists, generator } = d.run.gen;
  const figures = {
    appendsPerS: round(counters.appended! / generator.windowS, 0),
    appended: counters.appended!,
    writerCpuUsPerAppend: round((generator.windowCpuS * 1e6) / counters.appended!, 1),
    appendP50: hists.store_append?.p50 ?? null,
    appendP99: hists.store_append?.p99 ?? null,
  };
  record(ctx, 'store', set, d, figures, {}, false);
}

/**
 * A full collection in the hub through the V8 inspector it was started with (`HeapProfiler.collectGarbage`, DevTools'
 * button), before each RSS sample: without it the per-socket slope was whether a major collection happened to run just
 * before the sample (1.4 to 4 KiB per socket from run to run). Nothing in the hub changes.
 */
async function inspectorGc(port: number) {
  const [target] = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
  const ws = new WebSocket(target!.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const waiting = new Map<number, () => void>();
  ws.on('message', (data) => waiting.get((JSON.parse(String(data)) as { id: number }).id)?.());
  let id = 0;
  const call = (method: string) =>
    new Promise<void>((resolve, reject) => {
      const n = ++id;
      const timer = setTimeout(() => reject(new Error(`inspector: no answer to ${method}`)), 60_000);
      waiting.set(n, () => (clearTimeout(timer), waiting.delete(n), resolve()));
      ws.send(JSON.stringify({ id: n, method }));
    });
  await call('HeapProfiler.enable');
  // Twice: the first collection's finalizers free what the second then reclaims.
  return Object.assign(() => call('HeapProfiler.collectGarbage').then(() => call('HeapProfiler.collectGarbage')), {
    close: () => ws.close(),
  });
}

/** Idle sockets on one hub process in steps up to its open-file limit: RSS per socket as the slope over the steps. */
export async function connscale(ctx: Ctx) {
  const { sizes, seed } = ctx;
  const inspect = await freePort();
  const hub = await startHubs({
    replicas: 1,
    env: { ...ctx.hubBase, REDIS_PREFIX: ctx.hubBase.REDIS_PREFIX + 'cs:' },
    label: 'Hubbub (1 replica)',
    firstNodeArgs: [`--inspect=127.0.0.1:${inspect}`],
  });
  ctx.cleanup(() => hub.stop());
  const gc = await inspectorGc(inspect);
  const pid = hub.procs[0]!.pid;
  // fds a hub needs besides sockets (database pool, Redis, listen socket, files), and a generator process.
  const fdLimit = maxOpenFiles(pid);
  const target = Math.min(sizes.connScaleTarget, fdLimit - 200);
  const procs = Math.max(sizes.connScaleWorkers, Math.ceil(target / (maxOpenFiles(process.pid) - 100)));
  const steps = [...Array.from({ length: Math.ceil(target / sizes.connScaleStep) - 1 }, (_, i) => (i + 1) * sizes.connScaleStep), target];
  ctx.log(`connscale: up to ${target} idle sockets on one hub (port ${hub.procs[0]!.port})`);
  const users = Array.from({ length: target }, (_, i) => ({ url: hub.urls[0]!, token: seed.users[i % seed.users.length]!.t }));
  const jobs: JobSpec[] = shares(users, procs).map((share, w, all) => ({
    kind: 'connect',
    proto: 'hubbub',
    sockets: share,
    steps: steps.map((s) => Math.floor(s / all.length) + (w < s % all.length ? 1 : 0)),
    inFlight: 64,
    connectTimeoutS: 180,
    handshakeTimeoutMs: sizes.handshakeTimeoutMs,
  }));
  // The heap gauges are set in the heap-total gauge's collect: asked for first, so that the used figure is fresh.
  const heap = async () => {
    await hubMetrics(hub.procs[0]!, 'hubbub_nodejs_heap_size_total_bytes');
    return metricValue(await hubMetrics(hub.procs[0]!, 'hubbub_nodejs_heap_size_used_bytes'), 'hubbub_nodejs_heap_size_used_bytes');
  };
  /** RSS after a full collection, once it stops falling. */
  const settledRss = async () => {
    await gc();
    let rss = rssBytes(pid);
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const now = rssBytes(pid);
      if (now >= rss - 256 * 1024) return Math.min(rss, now);
      rss = now;
    }
    return rss;
  };
  const [rss0, heap0, cpu0] = [await settledRss(), await heap(), sample([serverWatch(hub)])];
  const rows: number[][] = [];
  let failures = 0;
  const run = await runGenerator({
    jobs,
    timeoutMs: (steps.length * 180 + 120) * 1000,
    log: (l) => ctx.log(`  ${l}`),
    onBarrier: async (name, infos) => {
      if (!name.startsWith('connected:')) return;
      const open = infos.reduce((a, x) => a + x.ok!, 0);
      failures = infos.reduce((a, x) => a + x.failed!, 0);
      const rss = await settledRss();
      const h = await heap();
      const cpuS = cpuDelta(cpu0, sample([serverWatch(hub)])).server!;
      const prev = rows.at(-1);
      const slope = prev && open > prev[0]! ? round(((rss / 2 ** 20 - prev[1]!) * 1024) / (open - prev[0]!), 2) : NaN;
      rows.push([
        open,
        round(rss / 2 ** 20, 1),
        round((rss - rss0) / open / 1024, 2),
        slope,
        round(h / 2 ** 20, 1),
        round((h - heap0) / open / 1024, 2),
        round(cpuS, 1),
      ]);
      ctx.log(
        `  connscale: ${open} sockets, hub RSS ${rows.at(-1)![1]} MiB, ${rows.at(-1)![2]} KiB per socket; V8 heap ${rows.at(-1)![5]} KiB per socket`,
      );
    },
  });
  gc.close();
  await hub.stop();
  const [first, last] = [rows[0], rows.at(-1)];
  const slope = first && last && last[0]! > first[0]! ? round(((last[1]! - first[1]!) * 1024) / (last[0]! - first[0]!), 2) : null;
  const at50k = rows.find((r) => r[0]! >= 50_000);
  const stop = target < sizes.connScaleTarget ? `capped at ${target}: the hub's open-file limit is ${fdLimit}` : 'target reached';
  ctx.record({
    name: 'connscale',
    server: hub.label,
    kind: 'hubbub',
    durationS: 0,
    counters: { ...run.counters, failures: failures + (run.counters.connect_dropped_idle ?? 0) },
    figures: {
      maxConnections: Math.max(0, ...rows.map((r) => r[0]!)),
      rssPerConnKiB: last?.[2] ?? null,
      rssSlopeKiBPerConn: slope,
      heapPerConnKiB: last?.[5] ?? null,
      rssPerConnKiBAt50k: at50k?.[2] ?? null,
      baselineRssMiB: round(rss0 / 2 ** 20, 1),
      stop,
    },
    tables: [
      {
        title: `Idle sockets on one hub process (baseline RSS ${round(rss0 / 2 ** 20, 1)} MiB; ${stop}; RSS slope over the steps ${slope ?? '–'} KiB per socket)`,
        head: [
          'sockets',
          'hub RSS MiB',
          'RSS per socket KiB (above baseline)',
          'RSS slope from the previous step, KiB per socket',
          'V8 heap MiB',
          'heap per socket KiB',
          'hub CPU s',
        ],
        rows,
      },
    ],
  });
}
