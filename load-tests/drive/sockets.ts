/**
 * The socket drives: every scenario the load generator runs (connect, fanout, login, api, reconnect, persist, store,
 * cassandra, and the phases of notify and attachments) builds its jobs and runs them through `drive`, which samples the
 * servers' CPU and RSS every 500 ms and exactly at the measured window's edges; `measure` records the figures.
 */
import { randomBytes } from 'node:crypto';
import { type FanoutJob, type GenResult, type JobSpec, newHistogram, runGenerator, shares, summarize } from '../gen/runner.ts';
import type { Ctx } from '../harness/context.ts';
import { hubStages } from '../harness/hub-stages.ts';
import { cpuDelta, findPid, round, type Sample, sample, type Watched } from '../harness/procs.ts';
import type { ScenarioResult } from '../harness/report.ts';
import type { Rooms, SeedFile } from '../harness/seed.ts';
import { type ServerSet, startHubs } from '../harness/servers.ts';

export const serverWatch = (set: ServerSet): Watched => ({ name: 'server', pids: () => set.procs.map((p) => p.pid) });
const perK = (cpuS: number, n: number) => (n > 0 ? round((cpuS * 1e6) / n, 1) : null);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Window = { before: Sample; after: Sample; s: number };
type Driven = { gen: GenResult; samples: Sample[]; window: Window | null; durationS: number };
type OpenWindow = (at: number, s: number) => void;
type OnBarrier = (name: string, open: OpenWindow) => Promise<number | undefined> | number | undefined;
/** A barrier handler that starts the phase `delayMs` from now and measures `s` seconds from there. */
const windowIn = (delayMs: number, s: number) => (b: string, open: OpenWindow) => {
  const at = Date.now() + delayMs;
  if (b === 'ready') open(at, s);
  return b === 'ready' ? at : undefined;
};

/** Runs `jobs`; `onBarrier` says when each phase starts and may open the measured window, sampled at both edges. */
export async function drive(ctx: Ctx, watch: Watched[], jobs: JobSpec[], onBarrier: OnBarrier, timeoutS: number): Promise<Driven> {
  const started = Date.now();
  const samples = [sample(watch)];
  const every = setInterval(() => samples.push(sample(watch)), 500);
  let w: (Window & { done: boolean }) | null = null;
  const timers: NodeJS.Timeout[] = [];
  const open: OpenWindow = (at, s) => {
    const win: Window & { done: boolean } = { before: sample(watch), after: sample(watch), s, done: false };
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
    const win = w as (Window & { done: boolean }) | null;
    if (win && !win.done) win.after = sample(watch);
    samples.push(sample(watch));
    return { gen, samples, window: win, durationS: (Date.now() - started) / 1000 };
  } finally {
    clearInterval(every);
    timers.forEach(clearTimeout);
  }
}

type Extra = Partial<ScenarioResult> & { figures: ScenarioResult['figures'] };
/**
 * Drives `jobs` and records the scenario: its figures, counters, histograms, CPU of every group and of the generator,
 * and what the servers logged. `unit`: the generator's CPU per unit of work. `generator` false: the process is the
 * system under test (the store's writer), whose event loop grades nothing.
 */
async function measure(
  ctx: Ctx,
  name: string,
  set: ServerSet,
  o: { watch?: Watched[]; jobs: JobSpec[]; onBarrier: OnBarrier; timeoutS: number; generator?: boolean; unit?: [string, () => number] },
  result: (run: Driven) => Extra | Promise<Extra>,
) {
  const run = await drive(ctx, o.watch ?? [serverWatch(set), ...ctx.backing], o.jobs, o.onBarrier, o.timeoutS);
  const { figures, ...extra } = await result(run);
  const peakRssMiB: Record<string, number> = {};
  for (const s of run.samples)
    for (const [k, v] of Object.entries(s.rss)) peakRssMiB[k] = Math.max(peakRssMiB[k] ?? 0, round(v / 2 ** 20, 1));
  const g = run.gen.generator;
  const who = o.generator === false ? 'writer' : 'generator';
  const n = o.unit?.[1]();
  const s: ScenarioResult = {
    ...{
      name,
      server: set.label,
      kind: set.kind,
      durationS: round(run.durationS, 1),
      peakRssMiB,
      counters: run.gen.counters,
      hists: run.gen.hists,
    },
    cpuS: { ...cpuDelta(run.samples[0]!, run.samples.at(-1)!), [who]: round(g.totalCpuS, 3) },
    windowCpuS: run.window ? { ...cpuDelta(run.window.before, run.window.after), [who]: round(g.windowCpuS, 3) } : undefined,
    figures: o.generator === false ? figures : { ...figures, generatorEldP99Ms: g.eldP99Ms, generatorEldMaxMs: g.eldMaxMs },
    generator: o.generator === false ? undefined : { ...g, unit: o.unit?.[0], perUnitMs: n ? round((g.totalCpuS * 1000) / n, 3) : null },
    generatorLogs: run.gen.logs.length ? run.gen.logs.slice(0, 20) : undefined,
    ...extra,
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
  if (s.generator) ctx.log(`  generator: ${JSON.stringify(s.generator)}`);
}

/** Rooms over the generator processes (each owns whole rooms); members alternate between the replicas. */
function roomJobs(ctx: Ctx, set: ServerSet, rooms: Rooms, seed = ctx.seed) {
  const { connectTimeoutS, handshakeTimeoutMs } = ctx.sizes;
  return shares(
    rooms.map((r, i) => ({ r, i })),
    ctx.sizes.genProcs,
  ).map((share) => ({
    share: share.length,
    rooms: share.map(({ r, i }) => ({
      id: r.id,
      members: r.m.map((ui, k) => ({ url: set.urls[(i + k) % set.urls.length]!, token: seed.users[ui]!.t })),
    })),
    ...{ proto: set.kind, runId: randomBytes(4).toString('hex'), connectTimeoutS, handshakeTimeoutMs },
  }));
}

type FanoutOptions = { seed?: SeedFile; rooms?: Rooms; rate?: number; durationS?: number; window?: number; senders?: 'first' | 'rotate' };
export function fanoutJobs(ctx: Ctx, set: ServerSet, o: FanoutOptions = {}): FanoutJob[] {
  const { sizes } = ctx;
  const rooms = o.rooms ?? ctx.seed.rooms;
  return roomJobs(ctx, set, rooms, o.seed).map(({ share, ...j }) => ({
    ...j,
    ...{ kind: 'fanout', mode: o.window ? 'max' : 'rate', window: o.window ?? 0, senders: o.senders ?? (o.window ? 'first' : 'rotate') },
    rate: ((o.rate ?? sizes.fanoutRate) * share) / rooms.length, // every room gets the same rate
    ...{ durationS: o.durationS ?? sizes.fanoutS, drainS: sizes.drainS, bodySize: sizes.bodySize },
  }));
}
/** Rooms of 2, one writer per room keeping `persistWindow` sends in flight (closed loop). */
export const persistJobs = (ctx: Ctx, set: ServerSet) =>
  fanoutJobs(ctx, set, { rooms: ctx.seed.prooms, durationS: ctx.sizes.persistS, window: ctx.sizes.persistWindow });

function apiJob(ctx: Ctx, set: ServerSet, loginRate: number, historyRate: number, durationS: number): JobSpec {
  const { seed, quick } = ctx;
  return {
    ...{ kind: 'api', bases: set.urls.map((x) => x.replace(/^ws/, 'http').replace(/\/ws$/, '')), loginRate, historyRate, durationS },
    ...{ password: seed.password, logins: seed.users.map((x) => x.u) },
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
  ctx.log(
    `${set.label}: ${name} (${jobs.reduce((a, x) => a + x.rooms.length, 0)} rooms, ${load}, ${j.durationS}s${loginRate ? `, logins ${loginRate}/s` : ''}) …`,
  );
  let delivered = 0;
  const stages = set.kind === 'hubbub' ? hubStages(set) : null;
  const window = windowIn(500, j.durationS + 0.5); // the send window plus 500 ms for the last deliveries
  const onBarrier: OnBarrier = (b, open) => {
    const at = window(b, open);
    if (at) stages?.window(at, j.durationS + 0.5);
    return at;
  };
  const jobList = loginRate ? [...jobs, apiJob(ctx, set, loginRate, 0, j.durationS)] : jobs;
  const timeoutS = ctx.sizes.connectTimeoutS + j.durationS + ctx.sizes.drainS + 120;
  await measure(
    ctx,
    name,
    set,
    { watch, jobs: jobList, onBarrier, timeoutS, unit: ['1,000 deliveries', () => delivered / 1000] },
    async ({ gen, window }) => {
      const [c, h] = [gen.counters, gen.hists];
      delivered = c.fanout_delivered ?? 0;
      const cpu = window ? cpuDelta(window.before, window.after) : {};
      const serverCpu = cpu.server ?? NaN;
      const stageFigures = stages ? await stages.figures() : {};
      if (stages) ctx.log(`  hub stages (ms): ${JSON.stringify(stageFigures)}`);
      const lat = h.fanout_latency;
      const perAck = (cpuS = NaN) => (c.fanout_acked ? round((cpuS * 1e6) / c.fanout_acked, 1) : null);
      const figures = {
        ...{ ackedPerS: round((c.fanout_acked ?? 0) / j.durationS, 0), deliveredPerS: round(delivered / j.durationS, 0) },
        deliveriesPerServerCpuS: round(delivered / serverCpu, 0),
        serverCpuPct: round((serverCpu / (window?.s ?? j.durationS)) * 100, 0),
        serverCpuMsPer1k: perK(serverCpu, delivered),
        ...{ latencyP50: lat?.p50 ?? null, latencyP99: lat?.p99 ?? null, latencyP999: lat?.p999 ?? null, latencyMax: lat?.max ?? null },
        // Hubs (or peers), PostgreSQL and Redis: what a delivery costs the whole server side.
        deliveriesPerAllServerCpuS: round(delivered / (serverCpu + (cpu.postgres ?? 0) + (cpu.redis ?? 0)), 0),
        ...{ pgCpuUsPerAppend: perAck(cpu.postgres), redisCpuUsPerSend: perAck(cpu.redis), ackP99: h.fanout_ack?.p99 ?? null },
        ...{
          sendLatenessP99: h.fanout_send_lateness?.p99 ?? null,
          loginP99: h.login_duration?.p99 ?? null,
          connectP99: h.fanout_connect_time?.p99 ?? null,
        },
        faults: (c.fanout_lost ?? 0) + (c.fanout_out_of_order ?? 0) + (c.fanout_duplicates ?? 0),
        ...stageFigures,
      };
      const dist = name === 'fanout' ? gen.distributions.fanout_latency : undefined;
      const points = dist && { latency: dist.map((d) => ({ x: d.p >= 100 ? 5 : -Math.log10(1 - d.p / 100), y: Math.max(d.ms, 0.001) })) };
      return points ? { figures, points } : { figures };
    },
  );
}

/** N sockets at once over the replicas, each counted once `resumed`; held, then closed. RSS per socket. */
export async function connect(ctx: Ctx, set: ServerSet) {
  const { sizes, seed } = ctx;
  const n = Math.min(sizes.connectN, seed.users.length);
  ctx.log(`${set.label}: connect (${n} sockets) …`);
  const sockets = seed.users.slice(0, n).map((x, i) => ({ url: set.urls[i % set.urls.length]!, token: x.t }));
  const watch = [serverWatch(set), ...ctx.backing];
  const before = sample(watch);
  let [peak, held, ok] = [before, 0, 0];
  const mib = (s: Sample) => round((s.rss.server ?? 0) / 2 ** 20, 1);
  const { connectTimeoutS, handshakeTimeoutMs } = sizes;
  const jobs: JobSpec[] = shares(sockets, sizes.genProcs).map((share) => ({
    kind: 'connect',
    proto: set.kind,
    sockets: share,
    connectTimeoutS,
    handshakeTimeoutMs,
  }));
  const onBarrier = async (barrier: string) => {
    if (barrier === 'ready') return Date.now() + 300;
    // Every socket resumed (or given up on): wait until the servers count them all, sample, hold.
    for (const end = Date.now() + 5000; (held = await set.connections()) < n && Date.now() < end; ) await sleep(200);
    peak = sample(watch);
    await sleep(sizes.holdS * 1000);
    return Date.now();
  };
  await measure(
    ctx,
    'connect',
    set,
    { watch, jobs, onBarrier, timeoutS: connectTimeoutS + sizes.holdS + 120, unit: ['socket', () => ok] },
    ({ gen, samples }) => {
      ok = gen.counters.connect_ok ?? 0;
      const ct = gen.hists.connect_time;
      let total = 0;
      return {
        figures: {
          ...{ connections: held, expected: n, missing: n - ok },
          rssPerConnKiB: held > 0 ? round(((peak.rss.server ?? 0) - (before.rss.server ?? 0)) / held / 1024, 2) : null,
          ...{ rssBeforeMiB: mib(before), rssAtPeakMiB: mib(peak) },
          serverCpuMsPerConn: round(((cpuDelta(samples[0]!, samples.at(-1)!).server ?? NaN) * 1000) / n, 3),
          ...{ connectP50: ct?.p50 ?? null, connectP95: ct?.p95 ?? null, connectP99: ct?.p99 ?? null },
        },
        points: {
          rss: [
            { x: 0, y: mib(before) },
            { x: held, y: mib(peak) },
          ].map((p) => ({ ...p, series: `${set.label} (connect storm)` })),
          connect: gen.timeline.map((k, i) => ({ x: round((i + 1) / 10, 1), y: (total += k) })),
        },
      };
    },
  );
}

/** auth.login and conversations.history at constant arrival rates (open loop). */
export async function api(ctx: Ctx, set: ServerSet) {
  const { loginRate, historyRate, apiS } = ctx.sizes;
  ctx.log(`${set.label}: api (login ${loginRate}/s, history ${historyRate}/s, ${apiS}s) …`);
  let calls = 0;
  const o = { jobs: [apiJob(ctx, set, loginRate, historyRate, apiS)], onBarrier: windowIn(300, apiS + 0.5), timeoutS: apiS + 120 };
  await measure(ctx, 'api', set, { ...o, unit: ['call', () => calls] }, ({ gen: { counters: c, hists } }) => {
    const [l, h] = [hists.login_duration, hists.history_duration];
    calls = (c.login_ok ?? 0) + (c.login_failed ?? 0) + (c.history_ok ?? 0) + (c.history_failed ?? 0);
    return {
      figures: {
        ...{ loginP50: l?.p50 ?? null, loginP99: l?.p99 ?? null, logins: l?.count ?? 0 },
        ...{ historyP50: h?.p50 ?? null, historyP99: h?.p99 ?? null, historyCalls: h?.count ?? 0 },
      },
    };
  });
}

/** Every member socket dropped at one instant and reopened, resuming from its last seq, while senders send 3 more. */
export async function reconnect(ctx: Ctx, set: ServerSet) {
  const { sizes } = ctx;
  const rooms = ctx.seed.rooms.slice(0, sizes.reconnectRooms);
  const members = rooms.reduce((a, r) => a + r.m.length, 0);
  ctx.log(`${set.label}: reconnect (${rooms.length} rooms, ${members} sockets dropped at once) …`);
  let dropAt = 0;
  const jobs: JobSpec[] = roomJobs(ctx, set, rooms).map(({ share: _, ...j }) => ({
    ...j,
    ...{ kind: 'reconnect', warm: 2, missed: 3, live: 1, resumeTimeoutS: sizes.resumeTimeoutS },
  }));
  const onBarrier = (_b: string, open: OpenWindow) => {
    const warmAt = Date.now() + 500;
    dropAt = warmAt + 2000;
    open(dropAt, sizes.resumeTimeoutS + 30); // from the drop to the end of the storm (closed when the generator finishes)
    return warmAt;
  };
  const timeoutS = sizes.connectTimeoutS + sizes.resumeTimeoutS + 120;
  await measure(ctx, 'reconnect', set, { jobs, onBarrier, timeoutS, unit: ['socket', () => members] }, ({ gen }) => {
    const [fm, rt, c] = [gen.hists.reconnect_first_message, gen.hists.reconnect_resume_time, gen.counters];
    return {
      figures: {
        ...{ resumed: c.reconnect_resumed ?? 0, members, retries: c.reconnect_retries ?? 0 },
        ...{ firstMessageP50: fm?.p50 ?? null, firstMessageP99: fm?.p99 ?? null, resumedP50: rt?.p50 ?? null, resumedP99: rt?.p99 ?? null },
        // When the generator got round to sending the missed messages: the floor under every first-message time.
        missedSentMaxMs: gen.hists.reconnect_missed_sent?.max ?? null,
      },
    };
  });
}

/** The write path alone: the hub's EventWriter and message store in a generator process, no sockets. */
export async function store(ctx: Ctx, label: string, env: Record<string, string>, watch: Watched[]) {
  const { storeProducers: producers, storeConvs: convs, storeS: durationS, bodySize } = ctx.sizes;
  ctx.log(`${label}: store, ${producers} writers over ${convs} conversations, ${durationS}s …`);
  const set: ServerSet = { kind: 'hubbub', label, procs: [], urls: [], connections: async () => 0, stop: async () => {} };
  const jobs: JobSpec[] = [{ kind: 'store', env, convs, producers, durationS, bodySize }];
  await measure(
    ctx,
    'store',
    set,
    { watch, jobs, onBarrier: windowIn(100, durationS), timeoutS: durationS + 120, generator: false },
    ({ gen }) => {
      const { counters: c, hists: h, generator: g } = gen;
      return {
        figures: {
          ...{
            appendsPerS: round(c.appended! / g.windowS, 0),
            appended: c.appended!,
            writerCpuUsPerAppend: round((g.windowCpuS * 1e6) / c.appended!, 1),
          },
          ...{ appendP50: h.store_append?.p50 ?? null, appendP99: h.store_append?.p99 ?? null },
        },
      };
    },
  );
}

/**
 * Fanout phases off, on, off, on (the hub `set(mode)`, with `during(mode)` running beside it until it is stopped):
 * latency and server CPU in each mode's windows, and the counters of all.
 */
export async function alternate(
  ctx: Ctx,
  phase: (mode: 'off' | 'on') => { set: ServerSet; jobs: FanoutJob[]; durationS: number; during?: () => () => Promise<void> },
) {
  const lat = { off: newHistogram(), on: newHistogram() };
  const [cpu, delivered, counters] = [{ off: 0, on: 0 }, { off: 0, on: 0 }, {} as Record<string, number>];
  for (const mode of ['off', 'on', 'off', 'on'] as const) {
    const { set, jobs, durationS, during } = phase(mode);
    ctx.log(`${set.label}: phase ${mode}, ${jobs.reduce((a, j) => a + j.rooms.length, 0)} rooms for ${durationS} s …`);
    const stop = during?.();
    const run = await drive(ctx, [serverWatch(set)], jobs, windowIn(500, durationS + 0.5), durationS + 180);
    await stop?.();
    if (run.gen.raw.fanout_latency) lat[mode].add(run.gen.raw.fanout_latency);
    cpu[mode] += run.window ? cpuDelta(run.window.before, run.window.after).server! : NaN;
    // Deliveries to the other members (each sender also gets its own message back).
    delivered[mode] += (run.gen.counters.fanout_delivered ?? 0) - (run.gen.counters.fanout_acked ?? 0);
    for (const [k, v] of Object.entries(run.gen.counters)) counters[k] = (counters[k] ?? 0) + v;
  }
  return { off: summarize(lat.off), on: summarize(lat.on), cpu, delivered, counters };
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
  const env = { ...ctx.hubBase, ...cassEnv, CASSANDRA_KEYSPACE: 'hubbub_bench', REDIS_PREFIX: `${ctx.hubBase.REDIS_PREFIX}c:` };
  const hubs = await startHubs({ replicas: 2, env, label: 'Hubbub (Cassandra store)' });
  ctx.cleanup(() => hubs.stop());
  const pid = findPid(['java', 'cassandra']);
  const cassWatch: Watched[] = pid ? [{ name: 'cassandra', pids: () => [pid] }] : [];
  await fanout(ctx, 'persist', hubs, persistJobs(ctx, hubs), 0, [serverWatch(hubs), ...cassWatch]);
  await hubs.stop();
  const storeEnv = { DATABASE_URL: ctx.databaseUrl, ...cassEnv, CASSANDRA_KEYSPACE: 'hubbub_bench_store' };
  await store(ctx, 'Hubbub write path (Cassandra)', storeEnv, cassWatch);
}
