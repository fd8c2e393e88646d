/**
 * The drives of the scenarios the load generator runs (connect, fanout, login, api, reconnect, persist, store,
 * cassandra; connscale has its own file): each builds its jobs and runs them through `measure`, which samples the
 * servers' CPU and RSS every 500 ms and exactly at the measured window's edges, and records the figures the drive takes
 * from the run.
 */
import { randomBytes } from 'node:crypto';
import { type FanoutJob, type GenResult, type JobSpec, runGenerator, shares } from '../gen/runner.ts';
import { cpuDelta, findPid, round, sample, type Sample, type Watched } from '../harness/procs.ts';
import type { ScenarioResult } from '../harness/report.ts';
import { hubStages } from '../harness/hub-stages.ts';
import { type ServerSet, startHubs } from '../harness/servers.ts';
import type { Rooms, SeedFile } from '../harness/seed.ts';
import type { Ctx } from '../harness/context.ts';

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
  onBarrier: (name: string, open: OpenWindow) => Promise<number | undefined> | number | undefined,
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
/** A barrier handler that starts the phase `delayMs` from now and measures `s` seconds from there. */
const windowIn = (delayMs: number, s: number) => (_b: string, open: OpenWindow) => {
  const at = Date.now() + delayMs;
  open(at, s);
  return at;
};

/**
 * Drives `jobs` and records the scenario: its figures, counters, histograms, CPU of every group and of the generator,
 * and what the servers logged. `generator` false: the process is the system under test (the store's writer), whose
 * event loop grades nothing.
 */
async function measure(
  ctx: Ctx,
  name: string,
  set: ServerSet,
  o: {
    watch?: Watched[];
    jobs: JobSpec[];
    onBarrier: Parameters<typeof drive>[4];
    timeoutS: number;
    figures(run: Driven): ScenarioResult['figures'] | Promise<ScenarioResult['figures']>;
    /** The generator's CPU per unit of work. */
    cost?(g: GenResult): Record<string, number | null>;
    generator?: boolean;
  },
) {
  const d = await drive(ctx, set, o.watch ?? [serverWatch(set), ...ctx.backing], o.jobs, o.onBarrier, o.timeoutS);
  const { run } = d;
  const figures = await o.figures(run);
  const peakRssMiB: Record<string, number> = {};
  for (const s of run.samples)
    for (const [k, v] of Object.entries(s.rss)) peakRssMiB[k] = Math.max(peakRssMiB[k] ?? 0, round(v / 2 ** 20, 1));
  const g = run.gen.generator;
  const generator = o.generator ?? true;
  const who = generator ? 'generator' : 'writer';
  const s: ScenarioResult = {
    ...{ name, server: set.label, kind: set.kind, durationS: round(run.durationS, 1) },
    cpuS: { ...cpuDelta(run.samples[0]!, run.samples.at(-1)!), [who]: round(g.totalCpuS, 3) },
    windowCpuS: run.window ? { ...cpuDelta(run.window.before, run.window.after), [who]: round(g.windowCpuS, 3) } : undefined,
    windowS: run.window ? round(run.window.s, 1) : undefined,
    ...{ peakRssMiB, counters: run.gen.counters, hists: run.gen.hists, distributions: run.gen.distributions },
    figures: generator ? { ...figures, generatorEldP99Ms: g.eldP99Ms, generatorEldMaxMs: g.eldMaxMs } : figures,
    generator: generator ? { ...g, ...o.cost?.(run.gen) } : undefined,
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
/** The generator's CPU ms per `unit` of `n`. */
const msPer = (unit: string, n: number) => (g: GenResult) => ({ [unit]: n ? round((g.generator.totalCpuS * 1000) / n, 3) : null });

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
    ...{ proto: set.kind, runId: runId(), connectTimeoutS: ctx.sizes.connectTimeoutS, handshakeTimeoutMs: ctx.sizes.handshakeTimeoutMs },
  }));
}

type FanoutOptions = { seed?: SeedFile; rooms?: Rooms; rate?: number; durationS?: number; window?: number; senders?: 'first' | 'rotate' };
export function fanoutJobs(ctx: Ctx, set: ServerSet, o: FanoutOptions = {}): FanoutJob[] {
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
    ...{ durationS: o.durationS ?? sizes.fanoutS, drainS: sizes.drainS, bodySize: sizes.bodySize },
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
export async function fanout(ctx: Ctx, name: string, set: ServerSet, jobs: FanoutJob[], loginRate = 0, watch?: Watched[]) {
  const j = jobs[0]!;
  const load = j.mode === 'max' ? `window ${j.window}/room` : `${jobs.reduce((a, x) => a + x.rate, 0)} sends/s`;
  const rooms = jobs.reduce((a, x) => a + x.rooms.length, 0);
  ctx.log(`${set.label}: ${name} (${rooms} rooms, ${load}, ${j.durationS}s${loginRate ? `, logins ${loginRate}/s` : ''}) …`);
  let delivered = 0;
  const stages = set.kind === 'hubbub' ? hubStages(set) : null;
  await measure(ctx, name, set, {
    watch,
    jobs: loginRate ? [...jobs, apiJob(ctx, set, loginRate, 0, j.durationS)] : jobs,
    // The send window plus 500 ms for the last deliveries, for the servers as for the generator.
    onBarrier: (barrier, open) => {
      if (barrier !== 'ready') return undefined;
      const at = windowIn(500, j.durationS + 0.5)(barrier, open);
      stages?.window(at, j.durationS + 0.5);
      return at;
    },
    timeoutS: ctx.sizes.connectTimeoutS + j.durationS + ctx.sizes.drainS + 120,
    figures: async ({ gen, window }) => {
      const c = gen.counters;
      delivered = c.fanout_delivered ?? 0;
      const cpu = window ? cpuDelta(window.before, window.after) : {};
      const serverCpu = cpu.server ?? NaN;
      // Hubs (or peers), PostgreSQL and Redis: what a delivery costs the whole server side.
      const allServerCpu = serverCpu + (cpu.postgres ?? 0) + (cpu.redis ?? 0);
      const lat = gen.hists.fanout_latency;
      const stageFigures = stages ? await stages.figures() : {};
      if (stages) ctx.log(`  hub stages (ms): ${JSON.stringify(stageFigures)}`);
      return {
        ackedPerS: round((c.fanout_acked ?? 0) / j.durationS, 0),
        deliveredPerS: round(delivered / j.durationS, 0),
        deliveriesPerServerCpuS: round(delivered / serverCpu, 0),
        serverCpuPct: round((serverCpu / (window?.s ?? j.durationS)) * 100, 0),
        serverCpuMsPer1k: perK(serverCpu, delivered),
        ...{ latencyP50: lat?.p50 ?? null, latencyP99: lat?.p99 ?? null, latencyP999: lat?.p999 ?? null, latencyMax: lat?.max ?? null },
        deliveriesPerAllServerCpuS: round(delivered / allServerCpu, 0),
        pgCpuUsPerAppend: c.fanout_acked ? round(((cpu.postgres ?? NaN) * 1e6) / c.fanout_acked, 1) : null,
        redisCpuUsPerSend: c.fanout_acked ? round(((cpu.redis ?? NaN) * 1e6) / c.fanout_acked, 1) : null,
        ackP99: gen.hists.fanout_ack?.p99 ?? null,
        sendLatenessP99: gen.hists.fanout_send_lateness?.p99 ?? null,
        loginP99: gen.hists.login_duration?.p99 ?? null,
        connectP99: gen.hists.fanout_connect_time?.p99 ?? null,
        ...stageFigures,
      };
    },
    cost: (g) => ({ msPer1kDeliveries: perK(g.generator.windowCpuS, delivered) }),
  });
}

/** N sockets at once over the replicas, each counted once `resumed`; held, then closed. RSS per socket. */
export async function connect(ctx: Ctx, set: ServerSet) {
  const { sizes, seed } = ctx;
  const n = Math.min(sizes.connectN, seed.users.length);
  ctx.log(`${set.label}: connect (${n} sockets) …`);
  const sockets = seed.users.slice(0, n).map((x, i) => ({ url: set.urls[i % set.urls.length]!, token: x.t }));
  const { connectTimeoutS, handshakeTimeoutMs } = sizes;
  const watch = [serverWatch(set), ...ctx.backing];
  const before = sample(watch);
  let peak: Sample | null = null;
  let held = 0;
  let ok = 0;
  const mib = (s: Sample | null) => (s ? round((s.rss.server ?? 0) / 2 ** 20, 1) : null);
  await measure(ctx, 'connect', set, {
    watch,
    jobs: shares(sockets, sizes.genProcs).map((share) => ({
      kind: 'connect',
      proto: set.kind,
      sockets: share,
      connectTimeoutS,
      handshakeTimeoutMs,
    })),
    onBarrier: async (barrier) => {
      if (barrier === 'ready') return Date.now() + 300;
      // Every socket resumed (or given up on): wait until the servers count them all, sample, hold.
      for (const deadline = Date.now() + 5000; (held = await set.connections()) < n && Date.now() < deadline; )
        await new Promise((r) => setTimeout(r, 200));
      peak = sample(watch);
      await new Promise((r) => setTimeout(r, sizes.holdS * 1000));
      return Date.now();
    },
    timeoutS: connectTimeoutS + sizes.holdS + 120,
    figures: ({ gen, samples }) => {
      const at = peak as Sample | null;
      ok = gen.counters.connect_ok ?? 0;
      const ct = gen.hists.connect_time;
      return {
        ...{ connections: held, expected: n, missing: n - ok },
        rssPerConnKiB: at && held > 0 ? round(((at.rss.server ?? 0) - (before.rss.server ?? 0)) / held / 1024, 2) : null,
        ...{ rssBeforeMiB: mib(before), rssAtPeakMiB: mib(at) },
        serverCpuMsPerConn: round(((cpuDelta(samples[0]!, samples.at(-1)!).server ?? NaN) * 1000) / n, 3),
        ...{ connectP50: ct?.p50 ?? null, connectP95: ct?.p95 ?? null, connectP99: ct?.p99 ?? null },
      };
    },
    cost: (g) => msPer('msPerSocket', ok)(g),
  });
}

/** auth.login and conversations.history at constant arrival rates (open loop). */
export async function api(ctx: Ctx, set: ServerSet) {
  const { loginRate, historyRate, apiS } = ctx.sizes;
  ctx.log(`${set.label}: api (login ${loginRate}/s, history ${historyRate}/s, ${apiS}s) …`);
  let calls = 0;
  await measure(ctx, 'api', set, {
    jobs: [apiJob(ctx, set, loginRate, historyRate, apiS)],
    onBarrier: windowIn(300, apiS + 0.5),
    timeoutS: apiS + 120,
    figures: ({ gen: { counters: c, hists } }) => {
      const [l, h] = [hists.login_duration, hists.history_duration];
      calls = (c.login_ok ?? 0) + (c.login_failed ?? 0) + (c.history_ok ?? 0) + (c.history_failed ?? 0);
      return {
        ...{ loginP50: l?.p50 ?? null, loginP99: l?.p99 ?? null, logins: l?.count ?? 0 },
        ...{ historyP50: h?.p50 ?? null, historyP99: h?.p99 ?? null, historyCalls: h?.count ?? 0 },
      };
    },
    cost: (g) => msPer('msPerCall', calls)(g),
  });
}

/** Every member socket dropped at one instant and reopened, resuming from its last seq, while senders send 3 more. */
export async function reconnect(ctx: Ctx, set: ServerSet) {
  const { sizes } = ctx;
  const rooms = ctx.seed.rooms.slice(0, sizes.reconnectRooms);
  const members = rooms.reduce((a, r) => a + r.m.length, 0);
  ctx.log(`${set.label}: reconnect (${rooms.length} rooms, ${members} sockets dropped at once) …`);
  let dropAt = 0;
  await measure(ctx, 'reconnect', set, {
    jobs: roomJobs(ctx, set, rooms).map(({ share: _, ...j }) => ({
      ...j,
      ...{ kind: 'reconnect', warm: 2, missed: 3, live: 1, resumeTimeoutS: sizes.resumeTimeoutS },
    })),
    onBarrier: (_b, open) => {
      const warmAt = Date.now() + 500;
      dropAt = warmAt + 2000;
      open(dropAt, sizes.resumeTimeoutS + 30); // from the drop to the end of the storm (closed when the generator finishes)
      return warmAt;
    },
    timeoutS: sizes.connectTimeoutS + sizes.resumeTimeoutS + 120,
    figures: ({ gen, window }) => {
      if (window) window.s = round((window.after.at - dropAt) / 1000, 1);
      const [fm, rt] = [gen.hists.reconnect_first_message, gen.hists.reconnect_resume_time];
      return {
        ...{ resumed: gen.counters.reconnect_resumed ?? 0, members },
        ...{ firstMessageP50: fm?.p50 ?? null, firstMessageP99: fm?.p99 ?? null, resumedP50: rt?.p50 ?? null, resumedP99: rt?.p99 ?? null },
        retries: gen.counters.reconnect_retries ?? 0,
        // When the generator got round to sending the missed messages: the floor under every first-message time.
        missedSentMaxMs: gen.hists.reconnect_missed_sent?.max ?? null,
      };
    },
    cost: msPer('msPerSocket', members),
  });
}

/** The write path alone: the hub's EventWriter and message store in a generator process, no sockets. */
export async function store(ctx: Ctx, label: string, env: Record<string, string>, watch: Watched[]) {
  const { storeProducers: producers, storeConvs: convs, storeS: durationS, bodySize } = ctx.sizes;
  ctx.log(`${label}: store, ${producers} writers over ${convs} conversations, ${durationS}s …`);
  const set: ServerSet = { kind: 'hubbub', label, procs: [], urls: [], connections: async () => 0, stop: async () => {} };
  await measure(ctx, 'store', set, {
    watch,
    jobs: [{ kind: 'store', env, convs, producers, durationS, bodySize }],
    onBarrier: windowIn(100, durationS),
    timeoutS: durationS + 120,
    generator: false,
    figures: ({ gen: { counters, hists, generator } }) => ({
      appendsPerS: round(counters.appended! / generator.windowS, 0),
      appended: counters.appended!,
      writerCpuUsPerAppend: round((generator.windowCpuS * 1e6) / counters.appended!, 1),
      ...{ appendP50: hists.store_append?.p50 ?? null, appendP99: hists.store_append?.p99 ?? null },
    }),
  });
}

/** Persist and store again with MESSAGE_STORE=cassandra on one local node (its JVM sampled beside the hubs). */
export async function cassandra(ctx: Ctx) {
  const { startCassandra } = await import('../../test/helpers/cassandra.ts');
  ctx.log('starting Cassandra (single node, loopback)');
  const cass = await startCassandra();
  ctx.cleanup(() => cass.stop());
  const cassEnv = {
    MESSAGE_STORE: 'cassandra',
    CASSANDRA_CONTACT_POINTS: cass.contactPoints.join(','),
    CASSANDRA_LOCAL_DC: cass.localDataCenter,
  };
  const hubs = await startHubs({
    replicas: 2,
    env: { ...ctx.hubBase, ...cassEnv, CASSANDRA_KEYSPACE: 'hubbub_bench', REDIS_PREFIX: `${ctx.hubBase.REDIS_PREFIX}c:` },
    label: 'Hubbub (Cassandra store)',
  });
  ctx.cleanup(() => hubs.stop());
  const pid = findPid(['java', 'cassandra']);
  const cassWatch: Watched[] = pid ? [{ name: 'cassandra', pids: () => [pid] }] : [];
  await fanout(ctx, 'persist', hubs, persistJobs(ctx, hubs), 0, [serverWatch(hubs), ...cassWatch]);
  await hubs.stop();
  const env = { DATABASE_URL: ctx.databaseUrl, ...cassEnv, CASSANDRA_KEYSPACE: 'hubbub_bench_store' };
  await store(ctx, 'Hubbub write path (Cassandra)', env, cassWatch);
}
