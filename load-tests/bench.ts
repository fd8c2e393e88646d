/**
 * `npm run bench [-- --quick] [--only=a,b] [--profile] [--pg-stats] [--cassandra] [--set KEY=VALUE …]
 *   [--threshold ID=VALUE …] [--hub-env KEY=VALUE …]`
 *
 * Starts PostgreSQL and Redis on loopback, seeds users and rooms, runs two hub replicas as
 * child processes and drives them with the load generator of gen/ (forked Node processes on
 * `ws`, each owning whole rooms or a range of sockets, HdrHistograms merged here); then runs the
 * same `connect` and `fanout` workloads against the three peers in peers/ (bare uWebSockets.js
 * with native pub/sub, plain `ws`, Socket.IO with the Redis adapter on two replicas), and the
 * idle-connection client against one hub. Samples every server process's CPU seconds and RSS
 * from /proc, checks every figure against the table of harness/thresholds.ts, writes
 * results/<timestamp>.{json,md}, its SVG charts and results/latest.md, and exits non-zero when
 * a threshold was missed (the report names it) or a scenario broke.
 *
 * Scenarios (--only): see SCENARIOS below.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../server/src/db/database.ts';
import { createDatabase, startPostgres, type PostgresHandle } from '../test/helpers/postgres.ts';
import { startRedis, type RedisHandle } from '../test/helpers/redis.ts';
import { inspectorGc, runConnScale, type ConnScaleResult } from './conn-scale.ts';
import { runSoak } from './soak.ts';
import { measureIdle, NPM_START, TSX_COMMAND, type IdleResult } from './idle.ts';
import type { ApiJob, ConnectJob, FanoutJob, Job, ReconnectJob } from './gen/jobs.ts';
import { runGenerator, shares, type GenResult } from './gen/runner.ts';
import { openPgStats, PG_STATS_CONFIG, type PgStatement } from './harness/pg-stats.ts';
import { cpuDelta, findPid, processTree, repoRoot, round, sample, type Sample, type Watched } from './harness/procs.ts';
import { summarizeProfile } from './harness/profile-summary.ts';
import { CEILING_SCENARIO, finishReport, type BenchResult, type ScenarioResult } from './harness/report.ts';
import { seedDatabase, type SeedFile } from './harness/seed.ts';
import { hubEnv, startDurablePeers, startHubs, startSocketIoPeers, startUwsPeer, startWsPeer, type ServerSet } from './harness/servers.ts';
import { parseOverrides } from './harness/thresholds.ts';
import { freePort } from '../test/helpers/ports.ts';

// ---- sizes ---------------------------------------------------------------------------------

const QUICK = {
  fanoutUsers: 500,
  roomSize: 25,
  persistUsers: 200,
  genProcs: 2,
  connectN: 500,
  holdS: 1,
  fanoutRate: 200,
  fanoutS: 4,
  drainS: 10,
  bodySize: 100,
  loginRate: 20,
  apiS: 4,
  historyRate: 50,
  reconnectRooms: 20,
  persistWindow: 4,
  persistS: 3,
  storeProducers: 500,
  storeConvs: 200,
  storeS: 3,
  connScaleTarget: 1000,
  connScaleSteps: '500,1000',
  connScaleWorkers: 2,
  connectTimeoutS: 60,
  resumeTimeoutS: 30,
  handshakeTimeoutMs: 20_000,
};
const FULL: typeof QUICK = {
  fanoutUsers: 10_000,
  roomSize: 25,
  persistUsers: 1000,
  genProcs: 2,
  connectN: 10_000,
  holdS: 8,
  fanoutRate: 2000,
  fanoutS: 30,
  drainS: 20,
  bodySize: 100,
  loginRate: 20,
  apiS: 20,
  historyRate: 200,
  reconnectRooms: 400,
  persistWindow: 8,
  persistS: 20,
  storeProducers: 2000,
  storeConvs: 1000,
  storeS: 15,
  connScaleTarget: 100_000,
  connScaleSteps: '5000,10000,15000,20000,50000,100000',
  connScaleWorkers: 4,
  connectTimeoutS: 180,
  resumeTimeoutS: 180,
  handshakeTimeoutMs: 20_000,
};

/**
 * The scenarios, in the order they run (--only picks a subset). `soak` is the integrator's
 * place for load-tests/soak.ts (`runSoak(opts)`, on its own branch): wire it in soakScenario()
 * below and add its thresholds to harness/thresholds.ts under scenario 'soak'.
 */
const SCENARIOS = {
  connect: 'connection storm: N authenticated sockets at once over the two replicas, held, RSS per socket',
  fanout: 'rooms of 25 over the two replicas, open-loop constant send rate, send→deliver latency, exactly-once in-order',
  login: 'fanout with auth.login at 20/s in the send window',
  api: 'auth.login and conversations.history at constant arrival rates (open loop on fetch)',
  reconnect: 'every socket dropped at once, reconnect + resume, time to first message, no gap or duplicate',
  persist: 'rooms of 2, one writer per room keeping a window in flight: durable acked messages/s',
  store: 'the write path alone (EventWriter + message store): durable appends/s',
  peers: 'connect and fanout against bare uWS, plain ws, Socket.IO + Redis adapter, and the durable floor (uWS + PostgreSQL + Redis, nothing else)',
  connscale: 'idle sockets on one hub process, in steps: RSS per socket',
  cassandra: 'persist and store with MESSAGE_STORE=cassandra (only with --cassandra or when named)',
  soak: 'long-running soak (load-tests/soak.ts; only with --soak or when named)',
  idle: '`npm start` as a user runs it (fresh DATA_DIR; embedded, then PostgreSQL + Redis), idle RSS; tsx the baseline',
} as const;
type ScenarioName = keyof typeof SCENARIOS;

// ---- arguments -----------------------------------------------------------------------------

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const option = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const quick = flag('quick');
const sizes: typeof QUICK = { ...(quick ? QUICK : FULL) };
/** Every value of a repeatable option, given as `--name VALUE` or `--name=VALUE`. */
function repeated(name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}` && i + 1 < argv.length) out.push(argv[++i]!);
    else if (argv[i]!.startsWith(`--${name}=`)) out.push(argv[i]!.slice(name.length + 3));
  }
  return out;
}
for (const kv of repeated('set')) {
  const [k, v] = kv.split('=');
  if (!k || v === undefined || !(k in sizes)) throw new Error(`--set ${kv}: unknown size (one of ${Object.keys(sizes).join(', ')})`);
  (sizes as Record<string, number | string>)[k] = typeof (sizes as Record<string, unknown>)[k] === 'number' ? Number(v) : v;
}
/** `--threshold ID=VALUE` (repeatable): a bound of harness/thresholds.ts for this run. */
const overrides = parseOverrides(repeated('threshold'));
/** `--hub-env KEY=VALUE` (repeatable): extra configuration for every hub replica (the README's configuration names). */
const hubExtraEnv: Record<string, string> = {};
for (const kv of repeated('hub-env')) {
  const at = kv.indexOf('=');
  if (at < 1 || !/^[A-Z][A-Z0-9_]*$/.test(kv.slice(0, at))) throw new Error(`--hub-env ${kv}: expected KEY=VALUE`);
  hubExtraEnv[kv.slice(0, at)] = kv.slice(at + 1);
}
const DEFAULT: ScenarioName[] = ['idle', 'connect', 'fanout', 'login', 'api', 'reconnect', 'persist', 'store', 'peers', 'connscale'];
const only = (option('only')?.split(',') ?? [...DEFAULT, ...(flag('cassandra') ? ['cassandra'] : []), ...(flag('soak') ? ['soak'] : [])]) as ScenarioName[];
for (const o of only) if (!(o in SCENARIOS)) throw new Error(`--only: unknown scenario ${o} (one of ${Object.keys(SCENARIOS).join(', ')})`);
const wants = (s: ScenarioName) => only.includes(s);
const profile = flag('profile');
/** --pg-stats: which statements PostgreSQL spent each Hubbub scenario on (pg_stat_statements). */
const pgStatsWanted = flag('pg-stats');
let pgStats: Awaited<ReturnType<typeof openPgStats>> | null = null;

const log = (s: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

// ---- the run -------------------------------------------------------------------------------

const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
const resultsDir = path.join(repoRoot, 'load-tests', 'results');
const work = mkdtempSync(path.join(os.tmpdir(), 'hubbub-bench-'));
const jwtSecret = randomBytes(32).toString('base64url');
const cleanups: (() => Promise<unknown>)[] = [];

const result: BenchResult = {
  startedAt: new Date().toISOString(),
  mode: quick ? 'quick' : 'full',
  sizes,
  overrides: Object.fromEntries(overrides),
  machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '?', memGiB: round(os.totalmem() / 2 ** 30, 1), node: process.version, kernel: os.release() },
  generator: `load-tests/gen: ${sizes.genProcs} forked Node processes on ws (HdrHistograms merged)`,
  scenarios: [],
  connScale: null,
  notes: [],
  ok: true,
  misses: [],
};

let seed: SeedFile;

async function main() {
  const t0 = Date.now();
  log(`mode ${result.mode}, scenarios ${only.join(',')}, work dir ${work}`);

  log('starting PostgreSQL and Redis');
  const [pg, redis] = await Promise.all([startPostgres({ durable: true, config: pgStatsWanted ? PG_STATS_CONFIG : {} }), startRedis()]);
  cleanups.push(() => pg.stop(), () => redis.stop());
  const databaseUrl = await retryWhileStarting(() => createDatabase(pg.url, 'hubbub_bench'));
  if (pgStatsWanted) {
    const stats = (pgStats = await openPgStats(databaseUrl));
    cleanups.push(() => stats.close());
  }
  const database = await openDatabase({ databaseUrl, dataDir: work });
  await database.migrate();
  await database.close();

  // First, while the box is quiet: nothing else of the bench runs yet.
  if (wants('idle')) {
    await idleScenario(pg, redis).catch((err: unknown) => {
      result.ok = false;
      result.notes.push(`idle failed: ${err instanceof Error ? err.message : String(err)}`);
      log(`idle failed: ${err instanceof Error ? err.stack : String(err)}`);
    });
  }

  const seedFile = path.join(work, 'seed.json');
  log(`seeding ${sizes.fanoutUsers} users in rooms of ${sizes.roomSize}, ${sizes.persistUsers} in rooms of 2`);
  seed = await seedDatabase(databaseUrl, jwtSecret, { groups: [{ name: 'rooms', users: sizes.fanoutUsers, roomSize: sizes.roomSize }, { name: 'prooms', users: sizes.persistUsers, roomSize: 2 }] }, seedFile);
  const backing = backingWatch(pg, redis);

  const hubBase = { ...hubEnv({ databaseUrl, redisUrl: redis.url, redisPrefix: `bench${stamp.replace(/-/g, '')}:`, jwtSecret, dataDir: work }), ...hubExtraEnv };
  const needHubs = (['connect', 'fanout', 'login', 'api', 'reconnect', 'persist'] as const).some(wants);
  if (needHubs) {
    const profileDir = path.join(os.tmpdir(), `hubbub-bench-profile-${stamp}`);
    // --perf-map: hub-a writes /tmp/perf-<pid>.map so `perf record -g -p <pid>` can name JS frames
    // (on-CPU samples only, unlike --cpu-prof, which on this oversubscribed box also counts
    // time spent preempted inside syscalls).
    const hubs = await startHubs({
      replicas: 2,
      env: hubBase,
      profile: profile ? { replicas: [0], dir: profileDir } : undefined,
      firstNodeArgs: flag('perf-map') ? ['--perf-basic-prof-only-functions', '--interpreted-frames-native-stack'] : [],
    });
    cleanups.push(() => hubs.stop());
    log(`hubs on ports ${hubs.procs.map((p) => p.port).join(', ')}, pids ${hubs.procs.map((p) => p.pid).join(', ')}`);
    const watch = [serverWatch(hubs), ...backing];

    if (wants('connect')) await connectScenario(hubs, watch);
    if (wants('fanout')) await fanoutScenario('fanout', hubs, watch, fanoutJob(hubs, seed.rooms, { mode: 'rate', rate: sizes.fanoutRate, durationS: sizes.fanoutS }));
    if (wants('login')) await fanoutScenario('fanout+login', hubs, watch, fanoutJob(hubs, seed.rooms, { mode: 'rate', rate: sizes.fanoutRate, durationS: sizes.fanoutS }), sizes.loginRate);
    if (wants('api')) await apiScenario(hubs, watch);
    if (wants('reconnect')) await reconnectScenario(hubs, watch);
    if (wants('persist')) await fanoutScenario('persist (PostgreSQL)', hubs, watch, persistJob(hubs));
    await hubs.stop();
    if (profile) {
      // Main thread only (tid 0): the others are tsx's module-loader thread.
      const files = readdirSync(profileDir).filter((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f));
      for (const f of files) {
        const summary = summarizeProfile(path.join(profileDir, f), 20);
        result.profile = { file: path.join(profileDir, f), scenarios: only.filter((o) => o !== 'peers' && o !== 'connscale'), ...summary };
        log(`profile of hub-a: ${path.join(profileDir, f)}`);
        for (const a of summary.byArea.slice(0, 12)) log(`  ${String(a.pct).padStart(5)}%  ${a.area}`);
      }
    }
  }

  if (wants('store')) await storeScenario('store path (PostgreSQL)', { DATABASE_URL: databaseUrl }, backing);

  if (wants('peers')) {
    const peerEnv = { SEED_FILE: seedFile, JWT_SECRET: jwtSecret, REDIS_URL: redis.url, REDIS_PREFIX: `sio${stamp.replace(/-/g, '')}` };
    // One peer at a time, so each has the box to itself.
    const peers = [() => startUwsPeer(peerEnv), () => startWsPeer(peerEnv), () => startSocketIoPeers(2, peerEnv), () => startDurablePeers(2, { ...peerEnv, DATABASE_URL: databaseUrl })];
    for (const start of peers) {
      const peer = await start();
      cleanups.push(() => peer.stop());
      const watch = [serverWatch(peer), ...backing];
      await connectScenario(peer, watch);
      await fanoutScenario('fanout', peer, watch, fanoutJob(peer, seed.rooms, { mode: 'rate', rate: sizes.fanoutRate, durationS: sizes.fanoutS }));
      // The persist workload against a server that stores nothing: how many acked sends/s this
      // load generator can drive on this box at all (the ceiling of the end-to-end persist figure).
      if (peer.kind === 'uws' && wants('persist')) await fanoutScenario(CEILING_SCENARIO, peer, watch, persistJob(peer));
      await peer.stop();
    }
  }

  if (wants('connscale')) {
    await connScaleScenario(hubBase, seedFile).catch((err: unknown) => {
      result.ok = false;
      result.notes.push(`conn-scale failed: ${err instanceof Error ? err.message : String(err)}`);
      log(`conn-scale failed: ${err instanceof Error ? err.stack : String(err)}`);
    });
  }
  if (wants('cassandra')) {
    await cassandraScenario(databaseUrl, redis, jwtSecret).catch((err: unknown) => {
      result.ok = false;
      result.notes.push(`Cassandra scenario failed: ${err instanceof Error ? err.message : String(err)}`);
      log(`Cassandra scenario failed: ${err instanceof Error ? err.stack : String(err)}`);
    });
  }
  if (wants('soak')) {
    await soakScenario().catch((err: unknown) => {
      result.ok = false;
      result.notes.push(`soak failed: ${err instanceof Error ? err.message : String(err)}`);
      log(`soak failed: ${err instanceof Error ? err.message : String(err)}`);
    });
  }

  result.durationS = round((Date.now() - t0) / 1000, 1);
  mkdirSync(resultsDir, { recursive: true });
  const { jsonFile, mdFile } = await finishReport(result, resultsDir, stamp, overrides);
  log(`wrote ${path.relative(repoRoot, jsonFile)} and ${path.relative(repoRoot, mdFile)} in ${result.durationS}s`);
  process.stdout.write('\n' + readFileSync(mdFile, 'utf8') + '\n');
  for (const m of result.misses) log(`MISSED ${m.id} (${m.server}): ${m.value} ${m.op} ${m.bound} failed: ${m.target}`);
  if (!result.ok) {
    log('FAILED: some threshold was missed or a scenario broke (see the report)');
    process.exitCode = 1;
  }
}

/** PostgreSQL accepts connections a moment before it accepts sessions ("the database system is starting up"). */
async function retryWhileStarting<T>(f: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await f();
    } catch (err) {
      if (i >= 60 || !/starting up/.test(String(err))) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/**
 * Idle memory (load-tests/idle.ts): `npm start` exactly as a user runs it (the compiled build, a
 * fresh DATA_DIR), with no environment (embedded: PGlite, in-process bus and jobs) and with
 * DATABASE_URL + REDIS_URL; and, as the baseline, the sources through tsx
 * (`node --import tsx server/src/main.ts`), as `npm start` ran before the production build.
 * Each figure is the larger of two samples: idle 10 s after it answers `/`, and idle 10 s after
 * one page load, sign-up, login and socket. The pairs run side by side (a fresh process each), so
 * the scenario takes about a minute.
 */
async function idleScenario(pg: PostgresHandle, redis: RedisHandle) {
  const t0 = Date.now();
  const postgresEnv = async () => ({ DATABASE_URL: await createDatabase(pg.url), REDIS_URL: redis.url, REDIS_PREFIX: `idle${runId()}:` });
  log('idle: npm start (embedded, then PostgreSQL + Redis) …');
  // npm start builds first (prestart); the tsx runs after it, so web/dist is there for them too.
  const built = await measureIdle({ label: 'npm start, embedded', command: NPM_START });
  const [built2, tsx, tsx2] = await Promise.all([
    postgresEnv().then((env) => measureIdle({ label: 'npm start, PostgreSQL + Redis', command: NPM_START, env })),
    measureIdle({ label: 'tsx, embedded', command: TSX_COMMAND }),
    postgresEnv().then((env) => measureIdle({ label: 'tsx, PostgreSQL + Redis', command: TSX_COMMAND, env })),
  ]);
  const worst = (r: IdleResult, k: 'rssMiB' | 'pssMiB' | 'heapUsedMiB' | 'heapTotalMiB' | 'externalMiB') => Math.max(r.started[k], r.used[k]);
  const figures: Record<string, number | string> = {};
  for (const [key, r] of [['Embedded', built], ['Postgres', built2], ['TsxEmbedded', tsx], ['TsxPostgres', tsx2]] as const) {
    figures[`rss${key}MiB`] = worst(r, 'rssMiB');
    figures[`pss${key}MiB`] = worst(r, 'pssMiB');
    figures[`heapUsed${key}MiB`] = worst(r, 'heapUsedMiB');
    figures[`heapTotal${key}MiB`] = worst(r, 'heapTotalMiB');
    figures[`external${key}MiB`] = worst(r, 'externalMiB');
    figures[`start${key}Ms`] = r.startMs;
    log(`  ${r.label}: RSS ${r.started.rssMiB} MiB idle, ${r.used.rssMiB} MiB after use (PSS ${r.used.pssMiB}, heap ${r.used.heapUsedMiB}/${r.used.heapTotalMiB}, external ${r.used.externalMiB}; npm itself ${r.used.launcherRssMiB} MiB)`);
  }
  figures.rssEmbeddedVsTsx = round(built.used.rssMiB / tsx.used.rssMiB, 2);
  figures.rssPostgresVsTsx = round(built2.used.rssMiB / tsx2.used.rssMiB, 2);
  figures.npmLauncherRssMiB = built.used.launcherRssMiB;
  result.scenarios.push({
    name: 'idle',
    server: 'Hubbub (npm start, 1 replica)',
    kind: 'hubbub',
    ok: true,
    durationS: round((Date.now() - t0) / 1000, 1),
    cpuS: {},
    windowCpuS: null,
    windowS: null,
    peakRssMiB: { embedded: worst(built, 'rssMiB'), postgres: worst(built2, 'rssMiB'), tsxEmbedded: worst(tsx, 'rssMiB'), tsxPostgres: worst(tsx2, 'rssMiB') },
    counters: {},
    hists: {},
    distributions: {},
    figures,
    generator: null,
  });
}

/**
 * The soak (load-tests/soak.ts, also `npm run soak`): mixed load with churn on two replicas for
 * `--soak-minutes` (20), with its own PostgreSQL and Redis. Its figures feed the 'soak' rows of
 * the threshold table: the RSS floor slope over the last half and the gauges after the load.
 */
async function soakScenario(): Promise<void> {
  const minutes = Number(option('soak-minutes') ?? (quick ? 1 : 20));
  const r = await runSoak({ durationS: Math.round(minutes * 60), outDir: resultsDir, log });
  const worst = (f: (x: (typeof r.summary)[number]) => number) => Math.max(...r.summary.map(f));
  result.scenarios.push({
    name: 'soak',
    server: 'Hubbub (2 replicas)',
    kind: 'hubbub',
    ok: true,
    durationS: Math.round(minutes * 60),
    cpuS: {},
    windowCpuS: null,
    windowS: null,
    peakRssMiB: {},
    counters: Object.fromEntries(Object.entries(r.counts).filter((e): e is [string, number] => typeof e[1] === 'number')),
    hists: {},
    distributions: {},
    figures: {
      rssFloorSlopeMiBPerMin: round(worst((x) => x.rssFloorSlope), 2),
      heapFloorSlopeMiBPerMin: round(worst((x) => x.heapFloorSlope), 2),
      maxGaugeDrift: worst((x) => x.drift),
      finalGauge: Math.max(...r.finalGauges),
      report: path.basename(r.files[0]!),
    },
    generator: null,
  });
}

async function connScaleScenario(hubBase: Record<string, string>, seedFile: string) {
  // With an inspector on loopback, so a full collection runs before each RSS sample (inspectorGc).
  const inspectPort = await freePort();
  const hub = await startHubs({ replicas: 1, env: { ...hubBase, REDIS_PREFIX: hubBase.REDIS_PREFIX + 'cs:' }, label: 'Hubbub (1 replica)', firstNodeArgs: [`--inspect=127.0.0.1:${inspectPort}`] });
  cleanups.push(() => hub.stop());
  const gc = await inspectorGc(inspectPort);
  log(`conn-scale: up to ${sizes.connScaleTarget} idle sockets on one hub (port ${hub.procs[0]!.port})`);
  const r: ConnScaleResult = await runConnScale({
    url: hub.targets,
    seedFile,
    target: sizes.connScaleTarget,
    steps: String(sizes.connScaleSteps).split(',').map(Number),
    workers: sizes.connScaleWorkers,
    serverPid: hub.procs[0]!.pid,
    metricsUrl: `http://127.0.0.1:${hub.procs[0]!.metricsPort}/metrics`,
    gc,
    log,
  });
  gc.close();
  result.connScale = r;
  result.scenarios.push({
    name: 'conn-scale',
    server: hub.label,
    kind: 'hubbub',
    ok: r.ok,
    durationS: 0,
    cpuS: {},
    windowCpuS: null,
    windowS: null,
    peakRssMiB: {},
    counters: { failures: r.failures, retries: r.retries },
    hists: {},
    distributions: {},
    figures: { maxConnections: r.maxConnections, rssPerConnKiB: r.steps.at(-1)?.rssPerConnKiB ?? null },
    generator: null,
  });
  await hub.stop();
}

// ---- jobs ------------------------------------------------------------------------------------

const urls = (set: ServerSet) => set.targets.split(',');
const runId = () => randomBytes(4).toString('hex');

/** Rooms over the generator processes (each owns whole rooms); members alternate between the replicas. */
function fanoutJob(set: ServerSet, rooms: SeedFile['rooms'], o: { mode: 'rate' | 'max'; rate: number; durationS: number; window?: number }): Omit<FanoutJob & Job, 'worker' | 'addresses'>[] {
  const u = urls(set);
  const indexed = rooms.map((r, i) => ({ r, i }));
  const id = runId();
  return shares(indexed, sizes.genProcs).map((share) => ({
    kind: 'fanout',
    proto: set.kind,
    rooms: share.map(({ r, i }) => ({ id: r.id, members: r.m.map((ui, k) => ({ url: u[(i + k) % u.length]!, token: seed.users[ui]!.t })) })),
    mode: o.mode,
    rate: (o.rate * share.length) / rooms.length, // every room gets the same rate
    window: o.window ?? 0,
    senders: o.mode === 'max' ? 'first' : 'rotate',
    durationS: o.durationS,
    drainS: sizes.drainS,
    bodySize: sizes.bodySize,
    runId: id,
    connectTimeoutS: sizes.connectTimeoutS,
    handshakeTimeoutMs: sizes.handshakeTimeoutMs,
  }));
}

const persistJob = (set: ServerSet) => fanoutJob(set, seed.prooms, { mode: 'max', rate: 0, durationS: sizes.persistS, window: sizes.persistWindow });

function apiJob(set: ServerSet, loginRate: number, historyRate: number, durationS: number): Omit<ApiJob & Job, 'worker' | 'addresses'> {
  const bases = urls(set).map((x) => x.replace(/^ws/, 'http').replace(/\/ws$/, ''));
  return {
    kind: 'api',
    bases,
    loginRate,
    historyRate,
    durationS,
    password: seed.password,
    logins: seed.users.map((x) => x.u),
    histories: seed.rooms.map((r, i) => ({ conv: r.id, token: seed.users[r.m[i % r.m.length]!]!.t })),
    // Full runs: as many calls in flight as the previous generator had virtual users for them.
    // Quick runs (a shared CI box) allow 5 s of backlog, so slowness shows as latency, not drops.
    maxInFlight: quick ? { login: loginRate * 5, history: historyRate * 5 } : { login: Math.max(8, loginRate), history: Math.max(16, Math.ceil(historyRate / 2)) },
  };
}

// ---- measuring -----------------------------------------------------------------------------

function serverWatch(set: ServerSet): Watched {
  return { name: 'server', pids: () => set.procs.map((p) => p.pid) };
}

/** PostgreSQL (postmaster and its backends) and Redis, found by their ports. */
function backingWatch(pg: PostgresHandle, redis: RedisHandle): Watched[] {
  const pgPort = new URL(pg.url).port;
  const postmaster = findPid(['bin/postgres', `-p ${pgPort}`]);
  const redisPid = findPid(['redis-server', `:${redis.port}`]);
  const out: Watched[] = [];
  if (postmaster) out.push({ name: 'postgres', pids: () => processTree(postmaster), reaper: postmaster });
  if (redisPid) out.push({ name: 'redis', pids: () => [redisPid] });
  return out;
}

interface Driven {
  gen: GenResult;
  samples: Sample[];
  window: { before: Sample; after: Sample; s: number } | null;
  durationS: number;
  pgStatements?: PgStatement[];
}

/**
 * Runs the generator processes of `jobs` against `set`, sampling the watched processes every
 * 500 ms. `onBarrier` decides when each phase starts; it may call `openWindow(at, s)` to have
 * the watched processes sampled exactly at `at` and `at + s` (the measured window).
 */
async function drive(
  set: ServerSet,
  watch: Watched[],
  jobs: Omit<Job, 'worker' | 'addresses'>[],
  onBarrier: (name: string, infos: Record<string, number>[], openWindow: (at: number, s: number) => void) => Promise<number | void> | number | void,
  timeoutS: number,
): Promise<Driven> {
  const stats = set.kind === 'hubbub' ? pgStats : null;
  await stats?.reset();
  const started = Date.now();
  const samples: Sample[] = [sample(watch)];
  const every = setInterval(() => samples.push(sample(watch)), 500);
  let window: Driven['window'] = null;
  const timers: NodeJS.Timeout[] = [];
  const openWindow = (at: number, s: number) => {
    const w = { before: sample(watch), after: sample(watch), s, done: false };
    window = w;
    timers.push(setTimeout(() => (w.before = sample(watch)), Math.max(0, at - Date.now())));
    timers.push(setTimeout(() => ((w.after = sample(watch)), (w.done = true)), Math.max(0, at + s * 1000 - Date.now())));
  };
  try {
    const gen = await runGenerator({ jobs, onBarrier: (name, infos) => onBarrier(name, infos, openWindow), timeoutMs: timeoutS * 1000, log: (l) => log(`  ${l}`) });
    const w = window as (NonNullable<Driven['window']> & { done: boolean }) | null;
    if (w && !w.done) w.after = sample(watch);
    samples.push(sample(watch));
    const out: Driven = { gen, samples, window: w, durationS: (Date.now() - started) / 1000 };
    if (stats) out.pgStatements = await stats.top();
    return out;
  } finally {
    clearInterval(every);
    for (const t of timers) clearTimeout(t);
  }
}

function peakRss(samples: Sample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) for (const [k, v] of Object.entries(s.rss)) out[k] = Math.max(out[k] ?? 0, round(v / 2 ** 20, 1));
  return out;
}

const perK = (cpuS: number, n: number) => (n > 0 ? round((cpuS * 1e6) / n, 1) : null);

/** Records a scenario's result: counters, histograms, CPU of every group and of the generator. */
function record(name: string, set: ServerSet, run: Driven, figures: Record<string, number | string | null>, generatorCost: Record<string, number | null>) {
  const first = run.samples[0]!;
  const last = run.samples.at(-1)!;
  const cpu = cpuDelta(first, last);
  cpu.generator = round(run.gen.generator.totalCpuS, 3);
  const windowCpuS = run.window ? { ...cpuDelta(run.window.before, run.window.after), generator: round(run.gen.generator.windowCpuS, 3) } : null;
  const s: ScenarioResult = {
    name,
    server: set.label,
    kind: set.kind,
    ok: true,
    durationS: round(run.durationS, 1),
    cpuS: cpu,
    windowCpuS,
    windowS: run.window ? round(run.window.s, 1) : null,
    peakRssMiB: peakRss(run.samples),
    counters: run.gen.counters,
    hists: run.gen.hists,
    distributions: run.gen.distributions,
    figures: { ...figures, generatorEldP99Ms: run.gen.generator.eldP99Ms, generatorEldMaxMs: run.gen.generator.eldMaxMs },
    generator: { ...run.gen.generator, ...generatorCost },
    ...(run.gen.timeline.length ? { timeline: run.gen.timeline } : {}),
    ...(run.pgStatements ? { pgStatements: run.pgStatements } : {}),
  };
  if (run.gen.logs.length) s.generatorLogs = run.gen.logs.slice(0, 20);
  // Whatever the servers logged at warn or above during the run (LOG_LEVEL=warn).
  for (const p of set.procs) {
    const lines = p.logs.splice(0);
    if (lines.length) {
      log(`  ${p.name} logged ${lines.length} line(s); last: ${lines.slice(-3).map((l) => l.slice(0, 400)).join(' | ')}`);
      s.serverLogs = [...(s.serverLogs ?? []), ...lines.slice(-20).map((l) => `${p.name}: ${l.slice(0, 1000)}`)];
    }
  }
  result.scenarios.push(s);
  log(`  ${JSON.stringify(s.figures)}`);
  log(`  generator: ${JSON.stringify(s.generator)}`);
  return s;
}

/** A scenario that threw: recorded as broken, so the run fails and the report says why. */
function broken(name: string, set: ServerSet, err: unknown) {
  const msg = err instanceof Error ? err.message : String(err);
  log(`  ${set.label} ${name} broke: ${err instanceof Error ? err.stack : msg}`);
  result.ok = false;
  result.notes.push(`${set.label} ${name} broke: ${msg.slice(0, 400)}`);
}

// ---- scenarios -----------------------------------------------------------------------------

async function fanoutScenario(name: string, set: ServerSet, watch: Watched[], jobs: Omit<FanoutJob & Job, 'worker' | 'addresses'>[], loginRate = 0) {
  const j = jobs[0]!;
  const rooms = jobs.reduce((a, x) => a + x.rooms.length, 0);
  log(`${set.label}: ${name} (${rooms} rooms, ${j.mode === 'max' ? `window ${j.window}/room` : `${sizes.fanoutRate} sends/s`}, ${j.durationS}s${loginRate ? `, logins ${loginRate}/s` : ''}) …`);
  const all: Omit<Job, 'worker' | 'addresses'>[] = [...jobs, ...(loginRate ? [apiJob(set, loginRate, 0, j.durationS)] : [])];
  let run: Driven;
  try {
    run = await drive(
      set,
      watch,
      all,
      (barrier, _infos, openWindow) => {
        const at = Date.now() + 500;
        // The send window plus 500 ms for the last deliveries, for the servers as for the generator.
        if (barrier === 'ready') openWindow(at, j.durationS + 0.5);
        return at;
      },
      sizes.connectTimeoutS + j.durationS + sizes.drainS + 120,
    );
  } catch (err) {
    return broken(name, set, err);
  }
  const c = run.gen.counters;
  const delivered = c.fanout_delivered ?? 0;
  const windowS = run.window?.s ?? j.durationS;
  const serverCpu = run.window ? cpuDelta(run.window.before, run.window.after).server ?? NaN : NaN;
  const lat = run.gen.hists.fanout_latency;
  const login = run.gen.hists.login_duration;
  record(
    name,
    set,
    run,
    {
      ackedPerS: round((c.fanout_acked ?? 0) / j.durationS, 0),
      deliveredPerS: round(delivered / j.durationS, 0),
      deliveriesPerServerCpuS: round(delivered / serverCpu, 0),
      serverCpuPct: round((serverCpu / windowS) * 100, 0),
      serverCpuMsPer1k: perK(serverCpu, delivered),
      latencyP50: lat?.p50 ?? null,
      latencyP99: lat?.p99 ?? null,
      latencyP999: lat?.p999 ?? null,
      latencyMax: lat?.max ?? null,
      sendLatenessP99: run.gen.hists.fanout_send_lateness?.p99 ?? null,
      loginP99: login ? login.p99 : null,
      connectP99: run.gen.hists.fanout_connect_time?.p99 ?? null,
    },
    { msPer1kDeliveries: perK(run.gen.generator.windowCpuS, delivered) },
  );
}

async function connectScenario(set: ServerSet, watch: Watched[]) {
  const n = Math.min(sizes.connectN, seed.users.length);
  log(`${set.label}: connect (${n} sockets) …`);
  const u = urls(set);
  const sockets = seed.users.slice(0, n).map((x, i) => ({ url: u[i % u.length]!, token: x.t }));
  const jobs: Omit<ConnectJob & Job, 'worker' | 'addresses'>[] = shares(sockets, sizes.genProcs).map((share) => ({
    kind: 'connect',
    proto: set.kind,
    sockets: share,
    connectTimeoutS: sizes.connectTimeoutS,
    handshakeTimeoutMs: sizes.handshakeTimeoutMs,
  }));
  // Memory per connection: RSS with every socket open minus RSS before, per socket.
  const before = sample(watch);
  let at: Sample | null = null;
  let held = 0;
  let run: Driven;
  try {
    run = await drive(
      set,
      watch,
      jobs,
      async (barrier) => {
        if (barrier === 'ready') return Date.now() + 300;
        // Every socket resumed (or given up on): wait until the servers count them all, sample, hold.
        const deadline = Date.now() + 5000;
        while ((held = await set.connections()) < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
        at = sample(watch);
        await new Promise((r) => setTimeout(r, sizes.holdS * 1000));
        return Date.now();
      },
      sizes.connectTimeoutS + sizes.holdS + 120,
    );
  } catch (err) {
    return broken('connect', set, err);
  }
  const got = at as Sample | null;
  const c = run.gen.counters;
  const okN = c.connect_ok ?? 0;
  const rssDelta = got ? (got.rss.server ?? 0) - (before.rss.server ?? 0) : NaN;
  const cpu = cpuDelta(run.samples[0]!, run.samples.at(-1)!).server ?? NaN;
  const ct = run.gen.hists.connect_time;
  record(
    'connect',
    set,
    run,
    {
      connections: held,
      expected: n,
      missing: n - okN,
      rssPerConnKiB: got && held > 0 ? round(rssDelta / held / 1024, 2) : null,
      rssBeforeMiB: round((before.rss.server ?? 0) / 2 ** 20, 1),
      rssAtPeakMiB: got ? round((got.rss.server ?? 0) / 2 ** 20, 1) : null,
      serverCpuMsPerConn: round((cpu * 1000) / n, 3),
      connectP50: ct?.p50 ?? null,
      connectP95: ct?.p95 ?? null,
      connectP99: ct?.p99 ?? null,
    },
    { msPerSocket: okN ? round((run.gen.generator.totalCpuS * 1000) / okN, 3) : null },
  );
}

async function apiScenario(set: ServerSet, watch: Watched[]) {
  log(`${set.label}: api (login ${sizes.loginRate}/s, history ${sizes.historyRate}/s, ${sizes.apiS}s) …`);
  let run: Driven;
  try {
    run = await drive(set, watch, [apiJob(set, sizes.loginRate, sizes.historyRate, sizes.apiS)], (_b, _i, openWindow) => {
      const at = Date.now() + 300;
      openWindow(at, sizes.apiS + 0.5);
      return at;
    }, sizes.apiS + 120);
  } catch (err) {
    return broken('api', set, err);
  }
  const c = run.gen.counters;
  const calls = (c.login_ok ?? 0) + (c.login_failed ?? 0) + (c.history_ok ?? 0) + (c.history_failed ?? 0);
  const l = run.gen.hists.login_duration;
  const h = run.gen.hists.history_duration;
  record(
    'api',
    set,
    run,
    { loginP50: l?.p50 ?? null, loginP99: l?.p99 ?? null, logins: l?.count ?? 0, historyP50: h?.p50 ?? null, historyP99: h?.p99 ?? null, historyCalls: h?.count ?? 0 },
    { msPerCall: calls ? round((run.gen.generator.totalCpuS * 1000) / calls, 3) : null },
  );
}

async function reconnectScenario(set: ServerSet, watch: Watched[]) {
  const rooms = seed.rooms.slice(0, Math.min(sizes.reconnectRooms, seed.rooms.length));
  const members = rooms.reduce((a, r) => a + r.m.length, 0);
  log(`${set.label}: reconnect (${rooms.length} rooms, ${members} sockets dropped at once) …`);
  const u = urls(set);
  const id = runId();
  const indexed = rooms.map((r, i) => ({ r, i }));
  const jobs: Omit<ReconnectJob & Job, 'worker' | 'addresses'>[] = shares(indexed, sizes.genProcs).map((share) => ({
    kind: 'reconnect',
    proto: set.kind,
    rooms: share.map(({ r, i }) => ({ id: r.id, members: r.m.map((ui, k) => ({ url: u[(i + k) % u.length]!, token: seed.users[ui]!.t })) })),
    warm: 2,
    missed: 3,
    live: 1,
    resumeTimeoutS: sizes.resumeTimeoutS,
    runId: id,
    connectTimeoutS: sizes.connectTimeoutS,
    handshakeTimeoutMs: sizes.handshakeTimeoutMs,
  }));
  let run: Driven;
  let dropAt = 0;
  try {
    run = await drive(
      set,
      watch,
      jobs,
      (_b, _i, openWindow) => {
        const warmAt = Date.now() + 500;
        dropAt = warmAt + 2000;
        // From the drop to the end of the storm (closed when the generator finishes).
        openWindow(dropAt, sizes.resumeTimeoutS + 30);
        return warmAt;
      },
      sizes.connectTimeoutS + sizes.resumeTimeoutS + 120,
    );
  } catch (err) {
    return broken('reconnect', set, err);
  }
  if (run.window) run.window.s = round((run.window.after.at - dropAt) / 1000, 1);
  const c = run.gen.counters;
  const fm = run.gen.hists.reconnect_first_message;
  const rt = run.gen.hists.reconnect_resume_time;
  const ms = run.gen.hists.reconnect_missed_sent;
  record(
    'reconnect',
    set,
    run,
    {
      resumed: c.reconnect_resumed ?? 0,
      members,
      firstMessageP50: fm?.p50 ?? null,
      firstMessageP99: fm?.p99 ?? null,
      resumedP50: rt?.p50 ?? null,
      resumedP99: rt?.p99 ?? null,
      retries: c.reconnect_retries ?? 0,
      // When the generator got round to sending the missed messages (after opening every
      // replacement socket): the floor under every first-message time, set by the generator.
      missedSentMaxMs: ms?.max ?? null,
    },
    { msPerSocket: members ? round((run.gen.generator.totalCpuS * 1000) / members, 3) : null },
  );
}

/**
 * The write path alone (load-tests/store-load.ts: EventWriter + store, no sockets): durable
 * appends per second, and CPU per append of the writer process and of the database.
 */
async function storeScenario(name: string, env: Record<string, string>, watch: Watched[]) {
  log(`${name}: ${sizes.storeProducers} writers over ${sizes.storeConvs} conversations, ${sizes.storeS}s …`);
  const before = sample(watch);
  const t0 = Date.now();
  let out: { appended: number; failed: number; seconds: number; appendsPerS: number; cpuS: number; latencyP50: number; latencyP99: number };
  try {
    // Not execFileSync: this process must keep reading the Cassandra JVM's output meanwhile,
    // or the JVM blocks once the pipe is full (~64 KB of log) and the run measures that.
    const stdout = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'load-tests', 'store-load.ts')], {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'inherit'],
        env: {
          ...process.env,
          ...env,
          NODE_ENV: 'production',
          CONVS: String(sizes.storeConvs),
          PRODUCERS: String(sizes.storeProducers),
          DURATION_S: String(sizes.storeS),
          BODY_SIZE: String(sizes.bodySize),
        },
      });
      let text = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      const timer = setTimeout(() => child.kill('SIGKILL'), (sizes.storeS + 120) * 1000);
      child.on('error', reject);
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve(text);
        else reject(new Error(`store-load exited with ${code ?? signal}: ${text.slice(-300)}`));
      });
    });
    out = JSON.parse(stdout.trim().split('\n').at(-1)!);
  } catch (err) {
    result.ok = false;
    result.notes.push(`${name} failed: ${err instanceof Error ? err.message.slice(0, 300) : String(err)}`);
    log(`  ${name} failed: ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  const after = sample(watch);
  const s: ScenarioResult = {
    name,
    server: 'Hubbub write path',
    kind: 'hubbub',
    ok: true,
    durationS: round((Date.now() - t0) / 1000, 1),
    cpuS: { writer: out.cpuS, ...cpuDelta(before, after) },
    windowCpuS: null,
    windowS: out.seconds,
    peakRssMiB: {},
    counters: { failed: out.failed, appended: out.appended },
    hists: {},
    distributions: {},
    figures: {
      appendsPerS: out.appendsPerS,
      appended: out.appended,
      writerCpuUsPerAppend: round((out.cpuS * 1e6) / out.appended, 1),
      appendP50: out.latencyP50,
      appendP99: out.latencyP99,
    },
    generator: null,
  };
  result.scenarios.push(s);
  log(`  ${JSON.stringify(s.figures)}`);
}

async function cassandraScenario(databaseUrl: string, redis: RedisHandle, secret: string) {
  const { startCassandra } = await import('../test/helpers/cassandra.ts');
  log('starting Cassandra (single node, loopback)');
  const cass = await startCassandra();
  cleanups.push(() => cass.stop());
  const env = {
    ...hubEnv({ databaseUrl, redisUrl: redis.url, redisPrefix: `benchc${stamp.replace(/-/g, '')}:`, jwtSecret: secret, dataDir: work }),
    MESSAGE_STORE: 'cassandra',
    CASSANDRA_CONTACT_POINTS: cass.contactPoints.join(','),
    CASSANDRA_LOCAL_DC: cass.localDataCenter,
    CASSANDRA_KEYSPACE: 'hubbub_bench',
  };
  const hubs = await startHubs({ replicas: 2, env, label: 'Hubbub (Cassandra store)' });
  cleanups.push(() => hubs.stop());
  const cassPid = findPid(['java', 'cassandra']);
  const cassWatch: Watched[] = cassPid ? [{ name: 'cassandra', pids: () => [cassPid] }] : [];
  await fanoutScenario('persist (Cassandra)', hubs, [serverWatch(hubs), ...cassWatch], persistJob(hubs));
  await hubs.stop();
  await storeScenario('store path (Cassandra)', { DATABASE_URL: databaseUrl, MESSAGE_STORE: 'cassandra', CASSANDRA_CONTACT_POINTS: env.CASSANDRA_CONTACT_POINTS, CASSANDRA_LOCAL_DC: env.CASSANDRA_LOCAL_DC, CASSANDRA_KEYSPACE: 'hubbub_bench_store' }, cassWatch);
  await cass.stop();
}

main()
  .catch((err: unknown) => {
    log(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    // Each cleanup gets a bounded time, then the process exits on its own: a child that will not
    // die (or a pipe it left open) must never keep a finished bench, and CI, waiting.
    for (const c of cleanups.reverse()) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([c().catch(() => {}), new Promise((r) => (timer = setTimeout(r, 30_000)))]);
      clearTimeout(timer);
    }
    rmSync(work, { recursive: true, force: true });
    process.exit(process.exitCode ?? 0);
  });
