/**
 * `npm run bench [-- --quick] [--only=a,b] [--set KEY=VALUE …] [--threshold ID=VALUE …] [--hub-env KEY=VALUE …]
 *   [--cassandra] [--soak] [--profile] [--pg-stats] [--save-baseline] [--peers=uws,ws,socketio,floor]`
 *
 * The one runner: starts PostgreSQL and Redis on loopback, seeds users and rooms, runs the scenarios of scenarios.ts in
 * order against the servers each names, checks every figure against the thresholds, writes the report to results/ and
 * exits non-zero when a threshold was missed or a scenario broke.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openDatabase } from '../server/src/db/database.ts';
import { createDatabase, startPostgres } from '../test/helpers/postgres.ts';
import { startRedis } from '../test/helpers/redis.ts';
import type { Ctx } from './harness/context.ts';
import { openPgStats, PG_STATS_CONFIG, summarizeProfile } from './harness/diagnostics.ts';
import { findPid, processTree, repoRoot, round, type Watched } from './harness/procs.ts';
import { type BenchResult, saveBaselines, writeReport } from './harness/report.ts';
import { type SeedFile, seedDatabase } from './harness/seed.ts';
import { hubEnv, type ServerSet, startHubs, startPeer } from './harness/servers.ts';
import { derive, evaluate, parseOverrides, targets } from './harness/thresholds.ts';
import { CHARTS, COMMON, SCENARIOS, type Sizes, sizesIn, THRESHOLDS } from './scenarios.ts';

const [many, bool] = [{ type: 'string', multiple: true, default: [] as string[] } as const, { type: 'boolean', default: false } as const];
const { values: opt } = parseArgs({
  options: {
    quick: bool,
    cassandra: bool,
    soak: bool,
    profile: bool,
    'pg-stats': bool,
    'save-baseline': bool,
    'hub-env': many,
    only: many,
    set: many,
    threshold: many,
    peers: many,
  },
});
const mode = opt.quick ? 'quick' : 'full';
const sizes = sizesIn(Object.assign({}, COMMON, ...Object.values(SCENARIOS).map((s) => s.sizes)), mode) as Sizes;
for (const kv of opt.set) {
  const [k, v] = [kv.slice(0, kv.indexOf('=')), Number(kv.slice(kv.indexOf('=') + 1))];
  if (!(k in sizes) || !kv.includes('=') || !Number.isFinite(v))
    throw new Error(`--set ${kv}: not KEY=NUMBER with a size (one of ${Object.keys(sizes).join(', ')})`);
  sizes[k as keyof Sizes] = v;
}
const overrides = parseOverrides(THRESHOLDS, opt.threshold);
const named = opt.only.flatMap((v) => v.split(','));
for (const o of named)
  if (!(o in SCENARIOS)) throw new Error(`--only: unknown scenario ${o} (one of ${Object.keys(SCENARIOS).join(', ')})`);
const runs = (name: string) => {
  const when = SCENARIOS[name]!.runs;
  return named.length ? named.includes(name) : when === 'default' || (when !== 'named' && opt[when]);
};
const only = Object.keys(SCENARIOS).filter(runs);
const seeded = (n: string) => SCENARIOS[n]!.servers !== 'own' || !!SCENARIOS[n]!.seeded;
/** The sizes the scenarios `names` read: their own, and the common ones when they use the seed. */
const sizesOf = (...names: string[]) =>
  Object.fromEntries(
    Object.entries(sizes).filter(([k]) => names.some((n) => k in SCENARIOS[n]!.sizes || (k in COMMON && seeded(n)))),
  ) as Record<string, number>;

const log = (s: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
const work = mkdtempSync(path.join(os.tmpdir(), 'hubbub-bench-'));
const runCleanups: (() => Promise<unknown>)[] = [];
const scenarioCleanups: (() => Promise<unknown>)[] = [];
/** Each cleanup gets a bounded time: a child that will not die must never keep a finished bench (and CI) waiting. */
async function runAll(list: (() => Promise<unknown>)[]) {
  for (const c of list.splice(0).reverse()) {
    let timer: NodeJS.Timeout | undefined;
    const failed = (err: unknown) => log(`cleanup failed: ${err instanceof Error ? err.message : String(err)}`);
    await Promise.race([c().catch(failed), new Promise((r) => (timer = setTimeout(r, 30_000)))]);
    clearTimeout(timer);
  }
}
const cpus = os.cpus();
const machine = { cpus: cpus.length, cpuModel: cpus[0]?.model ?? '?', memGiB: round(os.totalmem() / 2 ** 30, 1), node: process.version };
const result: BenchResult = {
  ...{ startedAt: new Date().toISOString(), mode, sizes: sizesOf(...only), overrides: Object.fromEntries(overrides) },
  ...{ machine: { ...machine, kernel: os.release() }, scenarios: [], notes: [], ok: true, misses: [], targets: [] },
};
const broke = (what: string, err: unknown) => {
  result.ok = false;
  result.notes.push(`${what} broke: ${(err instanceof Error ? err.message : String(err)).slice(0, 400)}`);
  log(`${what} broke: ${err instanceof Error ? err.stack : String(err)}`);
};

/** PostgreSQL accepts connections a moment before it accepts sessions ("the database system is starting up"). */
async function whileStarting<T>(f: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await f();
    } catch (err) {
      if (i >= 60 || !/starting up/.test(String(err))) throw err;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function main() {
  const t0 = Date.now();
  log(`mode ${mode}, scenarios ${only.join(',')}, work dir ${work}`);
  const [pg, redis] = await Promise.all([startPostgres({ durable: true, config: opt['pg-stats'] ? PG_STATS_CONFIG : {} }), startRedis()]);
  runCleanups.push(
    () => pg.stop(),
    () => redis.stop(),
  );
  const migrate = async (databaseUrl: string) => {
    const database = await openDatabase({ databaseUrl, dataDir: work });
    await database.migrate();
    await database.close();
  };
  const databaseUrl = await whileStarting(() => createDatabase(pg.url, 'hubbub_bench'));
  await migrate(databaseUrl);
  const postmaster = findPid(['bin/postgres', `-p ${new URL(pg.url).port}`]);
  const redisPid = findPid(['redis-server', `:${redis.port}`]);
  const backing: Watched[] = [
    ...(postmaster ? [{ name: 'postgres', pids: () => processTree(postmaster), reaper: postmaster }] : []),
    ...(redisPid ? [{ name: 'redis', pids: () => [redisPid] }] : []),
  ];
  const jwtSecret = randomBytes(32).toString('base64url');
  const tag = stamp.replace(/-/g, '');
  // --hub-env: any variable of the configuration table for every hub replica, to measure a setting.
  const hubExtra = Object.fromEntries(opt['hub-env'].map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const hubBase = { ...hubEnv({ databaseUrl, redisUrl: redis.url, redisPrefix: `bench${tag}:`, jwtSecret, dataDir: work }), ...hubExtra };
  // --pg-stats: PostgreSQL's top statements by execution time, per scenario on the hubs.
  const pgStats = opt['pg-stats'] ? await openPgStats(databaseUrl) : null;
  if (pgStats) runCleanups.push(() => pgStats.close());
  const seedFile = path.join(work, 'seed.json');
  let seed: SeedFile | undefined;
  const ctx: Ctx = {
    ...{ sizes, quick: mode === 'quick', pg, redis, databaseUrl, seedFile, jwtSecret, hubBase, backing, work, migrate, log },
    get seed() {
      if (!seed) throw new Error('the seed is made before the first scenario that needs it');
      return seed;
    },
    wants: runs,
    record: (s) => (result.scenarios.push(s), log(`  ${JSON.stringify(s.figures)}`)),
    cleanup: (f) => scenarioCleanups.push(f),
  };

  let hubs: ServerSet | null = null;
  const profileDir = path.join(os.tmpdir(), `hubbub-bench-profile-${stamp}`);
  const stopHubs = async () => {
    await hubs?.stop();
    hubs = null;
    // Main thread only (tid 0): the others are worker threads.
    for (const f of opt.profile ? readdirSync(profileDir).filter((x) => /\.\d+\.0\.\d+\.cpuprofile$/.test(x)) : []) {
      result.profile = { file: path.join(profileDir, f), ...summarizeProfile(path.join(profileDir, f), 20) };
      log(`profile of hub-a: ${result.profile.file}`);
    }
  };
  const peerEnv = {
    SEED_FILE: seedFile,
    JWT_SECRET: jwtSecret,
    REDIS_URL: redis.url,
    REDIS_PREFIX: `sio${tag}`,
    DATABASE_URL: databaseUrl,
  };
  const peers = opt.peers.flatMap((v) => v.split(','));
  for (const name of only) {
    const s = SCENARIOS[name]!;
    if (s.servers !== 'hubs') await stopHubs();
    if (seeded(name) && !seed) {
      log(`seeding ${sizes.fanoutUsers} users in rooms of ${sizes.roomSize}, ${sizes.persistUsers} in rooms of 2`);
      const groups = [
        { name: 'rooms', users: sizes.fanoutUsers, roomSize: sizes.roomSize },
        { name: 'prooms', users: sizes.persistUsers, roomSize: 2 },
      ];
      seed = await seedDatabase(databaseUrl, jwtSecret, groups, seedFile);
    }
    try {
      if (s.servers === 'hubs') {
        const firstNodeArgs = opt.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
        hubs ??= await startHubs({ replicas: 2, env: hubBase, firstNodeArgs });
        await pgStats?.reset();
        await s.drive(ctx, hubs);
        if (pgStats) ((result.pgStatements ??= {})[name] = await pgStats.top()).forEach((q) => log(`  pg ${JSON.stringify(q)}`));
      } else if (s.servers === 'peers') {
        // One peer at a time, so that each has the box to itself.
        for (const kind of (['uws', 'ws', 'socketio', 'floor'] as const).filter((k) => !peers.length || peers.includes(k))) {
          const set = await startPeer(kind, peerEnv);
          scenarioCleanups.push(() => set.stop());
          await s.drive(ctx, set).catch((err: unknown) => broke(`${set.label} ${name}`, err));
          await set.stop();
        }
      } else await s.drive(ctx);
    } catch (err) {
      broke(name, err);
    }
    await runAll(scenarioCleanups);
  }
  await stopHubs();

  result.durationS = round((Date.now() - t0) / 1000, 1);
  derive(result.scenarios, Object.fromEntries(Object.entries(SCENARIOS).map(([k, s]) => [k, s.vs ?? {}])));
  const { misses, invalid } = evaluate(THRESHOLDS, result.scenarios, mode, overrides);
  for (const s of result.scenarios) if (invalid.has(s)) s.invalid = `generator event-loop p99 ${s.figures.generatorEldP99Ms} ms`;
  result.misses = misses.filter((m) => !m.grade);
  result.targets = targets(THRESHOLDS, result.scenarios, overrides);
  if (result.misses.length) result.ok = false;
  const specs = Object.fromEntries(Object.entries(SCENARIOS).map(([k, s]) => [k, s.figures]));
  const md = await writeReport(result, path.join(repoRoot, 'load-tests', 'results'), stamp, specs, CHARTS);
  if (opt['save-baseline']) saveBaselines(result, (name) => sizesOf(name));
  log(`wrote load-tests/results/${stamp}.json and latest.md in ${result.durationS}s`);
  process.stdout.write(`\n${md}\n`);
  for (const m of result.misses) log(`MISSED ${m.id} (${m.server}): ${m.value} ${m.op} ${m.bound} failed: ${m.target}`);
  if (!result.ok) {
    log('FAILED: some threshold was missed or a scenario broke (see the report)');
    process.exitCode = 1;
  }
}

main()
  .catch((err: unknown) => {
    log(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await runAll(scenarioCleanups);
    await runAll(runCleanups);
    rmSync(work, { recursive: true, force: true });
    process.exit(process.exitCode ?? 0);
  });
