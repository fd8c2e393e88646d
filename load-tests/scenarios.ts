/**
 * The bench's one table: every scenario with its sizes (quick and full), the servers it runs against, its drive, the
 * figures it reports against its baseline, and its thresholds. A threshold has a bound for full runs (the target it
 * stands for) and one for quick runs (CI: a few seconds a scenario on a shared 2-core box), which keeps every
 * correctness bound and only sanity bounds on latency and throughput. A missed one fails `npm run bench`; rows marked
 * `grade` are targets the report grades without failing the run. `--threshold ID=VALUE` overrides one bound.
 */
import type { PostgresHandle } from '../test/helpers/postgres.ts';
import type { RedisHandle } from '../test/helpers/redis.ts';
import type { openPgStats } from './harness/diagnostics.ts';
import type { Watched } from './harness/procs.ts';
import type { Miss, ScenarioResult } from './harness/report.ts';
import type { ServerKind, ServerSet } from './harness/servers.ts';
import type { SeedFile } from './harness/seed.ts';
import * as sockets from './drive/sockets.ts';

/** What a drive gets from the runner. */
export interface Ctx {
  sizes: Sizes;
  quick: boolean;
  pg: PostgresHandle;
  redis: RedisHandle;
  /** The bench's database (migrated) and the seed in it, with the JWT secret its tokens are signed with. */
  databaseUrl: string;
  seed: SeedFile;
  seedFile: string;
  jwtSecret: string;
  /** The hubs' environment: hubEnv() and --hub-env. */
  hubBase: Record<string, string>;
  /** PostgreSQL and Redis, sampled beside the servers. */
  backing: Watched[];
  work: string;
  pgStats: Awaited<ReturnType<typeof openPgStats>> | null;
  /** Whether a scenario runs in this bench. */
  wants(name: string): boolean;
  migrate(databaseUrl: string): Promise<void>;
  record(s: ScenarioResult): void;
  /** Runs when the scenario ends, or when the bench is interrupted. */
  cleanup(f: () => Promise<unknown>): void;
  log(s: string): void;
}

export type Op = '<=' | '>=' | '==';
export interface Threshold {
  /** `<scenario>.<metric>`: what `--threshold` names and the report prints. */
  id: string;
  /** `*` for every scenario. */
  scenario: string;
  servers: 'all' | ServerKind[];
  /** A key of the scenario's figures or counters. */
  metric: string;
  op: Op;
  full: number;
  quick: number;
  /** Full runs: the bound is `factor` × another scenario's figure (same server kind). */
  relative?: { scenario: string; metric: string; factor: number };
  /** A target the report grades; it never fails the run. */
  grade?: true;
  target: string;
}
export interface ScenarioFigures {
  name: string;
  kind: ServerKind;
  server: string;
  figures: Record<string, number | string | null>;
  counters: Record<string, number>;
}

/** Every size of the table: what `--set` may change. */
export type Sizes = Record<
  | 'fanoutUsers'
  | 'roomSize'
  | 'persistUsers'
  | 'genProcs'
  | 'bodySize'
  | 'drainS'
  | 'connectTimeoutS'
  | 'resumeTimeoutS'
  | 'handshakeTimeoutMs'
  | 'fanoutRate'
  | 'connectN'
  | 'holdS'
  | 'fanoutS'
  | 'loginRate'
  | 'apiS'
  | 'historyRate'
  | 'reconnectRooms'
  | 'persistWindow'
  | 'persistS'
  | 'storeProducers'
  | 'storeConvs'
  | 'storeS'
  | 'connScaleTarget'
  | 'connScaleStep'
  | 'connScaleWorkers'
  | 'soakMinutes'
  | 'soakUsers'
  | 'soakSockets'
  | 'soakSendRate'
  | 'soakCallRate'
  | 'soakLoginRate'
  | 'soakSampleS'
  | 'notifyRooms'
  | 'notifySize'
  | 'notifyRate'
  | 'notifyS'
  | 'notifyDelayMs'
  | 'paymentsPayers'
  | 'paymentsPer'
  | 'framesCount'
  | 'framesRounds',
  number
>;
type Row = Omit<Threshold, 'id' | 'scenario' | 'servers'> & { servers?: Threshold['servers'] };

export interface Scenario {
  about: string;
  /** `default`: runs without --only; `cassandra`/`soak`: with that flag; `named`: only when --only names it. */
  runs: 'default' | 'cassandra' | 'soak' | 'named';
  sizes: { quick: Partial<Sizes>; full: Partial<Sizes> };
  /** The two hub replicas shared by consecutive scenarios, the four peers one at a time, or what its drive starts. */
  servers: 'hubs' | 'peers' | 'own';
  /** Its drive reads the bench's seed (users, rooms, tokens); scenarios against the hubs or the peers all do. */
  seeded?: true;
  /** The figures compared with its baseline. */
  figures: string[];
  thresholds: Row[];
  drive(ctx: Ctx, set?: ServerSet): Promise<void>;
}

/** Sizes more than one scenario reads: the seed, the generator's processes, timeouts. */
export const COMMON: Scenario['sizes'] = {
  quick: {
    fanoutUsers: 500,
    roomSize: 25,
    persistUsers: 200,
    genProcs: 2,
    bodySize: 100,
    drainS: 10,
    connectTimeoutS: 60,
    resumeTimeoutS: 30,
    handshakeTimeoutMs: 20_000,
    fanoutRate: 200,
    connectN: 500,
  },
  full: {
    fanoutUsers: 10_000,
    roomSize: 25,
    persistUsers: 1000,
    genProcs: 2,
    bodySize: 100,
    drainS: 20,
    connectTimeoutS: 180,
    resumeTimeoutS: 180,
    handshakeTimeoutMs: 20_000,
    fanoutRate: 2000,
    connectN: 10_000,
  },
};

const zero = (metric: string, target: string, servers?: Threshold['servers']): Row => ({
  metric,
  op: '==',
  full: 0,
  quick: 0,
  target,
  servers,
});
const bound = (metric: string, op: Op, full: number, quick: number, target: string, servers: Threshold['servers'] = ['hubbub']): Row => ({
  metric,
  op,
  full,
  quick,
  target,
  servers,
});
const target = (metric: string, op: Op, full: number, text: string): Row => ({
  metric,
  op,
  full,
  quick: full,
  target: text,
  servers: ['hubbub'],
  grade: true,
});
const deliveryChecks: Row[] = [
  zero('fanout_lost', 'every receiver gets every acknowledged message'),
  zero('fanout_out_of_order', 'in order (per-room seq; per-sender order for Socket.IO and the durable floor)'),
  zero('fanout_duplicates', 'exactly once'),
  zero('fanout_send_errors', 'no send refused'),
  zero('fanout_unacked', 'every send acknowledged'),
  zero('fanout_connect_failed', 'every member socket resumed'),
  zero('fanout_unexpected_close', 'no socket dropped by the server'),
  bound('fanout_delivered', '>=', 1, 1, 'something was delivered', 'all'),
];
const FANOUT_FIGURES = ['deliveriesPerServerCpuS', 'serverCpuPct', 'latencyP50', 'latencyP99', 'latencyP999', 'ackedPerS'];

const lazy = {
  idle: () => import('./drive/idle.ts'),
  soak: () => import('./drive/soak.ts'),
  notify: () => import('./drive/notify.ts'),
  attachments: () => import('./drive/attachments.ts'),
  inProcess: () => import('./drive/in-process.ts'),
};
const watch = (ctx: Ctx, set: ServerSet) => [sockets.serverWatch(set), ...ctx.backing];
/** A drive against the servers the runner started for it (the hubs, or each peer). */
const on = (f: (ctx: Ctx, set: ServerSet) => Promise<unknown>) => async (ctx: Ctx, set?: ServerSet) => void (await f(ctx, set!));

export const SCENARIOS: Record<string, Scenario> = {
  idle: {
    about: '`npm start` as a user runs it (fresh DATA_DIR; embedded, then PostgreSQL + Redis), idle RSS; tsx the baseline',
    runs: 'default',
    sizes: { quick: {}, full: {} },
    servers: 'own',
    figures: ['rssEmbeddedMiB', 'rssPostgresMiB', 'pssEmbeddedMiB', 'pssPostgresMiB', 'rssEmbeddedVsTsx', 'rssPostgresVsTsx'],
    // Quick runs (a busy CI box, collections later) leave a margin.
    thresholds: [
      bound('rssEmbeddedMiB', '<=', 250, 320, 'npm start idle RSS ≤ 250 MB embedded (PGlite, in-process bus and jobs)'),
      bound('rssPostgresMiB', '<=', 150, 200, 'npm start idle RSS ≤ 150 MB with PostgreSQL and Redis'),
    ],
    drive: async (ctx) => (await lazy.idle()).idleMemory(ctx),
  },
  connect: {
    about: 'connection storm: N authenticated sockets at once over the two replicas, held; time to `resumed`, RSS and CPU per socket',
    runs: 'default',
    sizes: { quick: { holdS: 1 }, full: { holdS: 8 } },
    servers: 'hubs',
    figures: ['rssPerConnKiB', 'serverCpuMsPerConn', 'connectP50', 'connectP99'],
    thresholds: [
      zero('connect_failed', 'every socket of the storm connects and resumes'),
      zero('missing', 'every socket of the storm connects and resumes'),
      zero('connect_dropped_idle', 'no idle socket dropped'),
      bound('connectP95', '<=', 10_000, 30_000, 'connection storm: p95 time to resumed ≤ 10 s', 'all'),
    ],
    drive: on((ctx, set) => sockets.connect(ctx, set, watch(ctx, set))),
  },
  fanout: {
    about: 'rooms of 25 over the two replicas at a constant total send rate (open loop): send→deliver latency, exactly once and in order',
    runs: 'default',
    sizes: { quick: { fanoutS: 4 }, full: { fanoutS: 30 } },
    servers: 'hubs',
    figures: FANOUT_FIGURES,
    thresholds: [
      ...deliveryChecks,
      bound('latencyP50', '<=', 2, 2000, 'send→deliver p50 ≤ 2 ms'),
      bound('latencyP99', '<=', 10, 5000, 'send→deliver p99 ≤ 10 ms'),
      bound('latencyP999', '<=', 25, 10_000, 'send→deliver p99.9 ≤ 25 ms'),
      target('vsWs', '>=', 3, 'fanout deliveries per server CPU-second ≥ 3× plain ws'),
      target('vsSocketIo', '>=', 8, 'fanout deliveries per server CPU-second ≥ 8× Socket.IO + Redis adapter'),
    ],
    drive: on((ctx, set) => sockets.fanout(ctx, 'fanout', set, watch(ctx, set), sockets.fanoutJobs(ctx, set))),
  },
  login: {
    about: 'the fanout with auth.login at `loginRate` in the send window',
    runs: 'default',
    sizes: { quick: { loginRate: 20 }, full: { loginRate: 20 } },
    servers: 'hubs',
    figures: [...FANOUT_FIGURES, 'loginP99'],
    thresholds: [
      ...deliveryChecks,
      bound('loginP99', '<=', 50, 20_000, 'login p99 ≤ 50 ms at 20/s during fanout'),
      zero('login_failed', 'every login succeeds', ['hubbub']),
      zero('login_dropped', 'no login dropped by the open-loop scheduler', ['hubbub']),
      {
        ...bound('latencyP99', '<=', Infinity, Infinity, 'fanout p99 during logins ≤ 1.1× without'),
        relative: { scenario: 'fanout', metric: 'latencyP99', factor: 1.1 },
      },
    ],
    drive: on((ctx, set) => sockets.fanout(ctx, 'login', set, watch(ctx, set), sockets.fanoutJobs(ctx, set), ctx.sizes.loginRate)),
  },
  api: {
    about: 'auth.login and conversations.history at constant arrival rates (open loop)',
    runs: 'default',
    sizes: { quick: { apiS: 4, historyRate: 50 }, full: { apiS: 20, historyRate: 200 } },
    servers: 'hubs',
    figures: ['loginP50', 'loginP99', 'historyP50', 'historyP99'],
    thresholds: [
      bound('loginP99', '<=', 50, 20_000, 'auth.login p99 ≤ 50 ms at 20/s'),
      bound('historyP99', '<=', 50, 20_000, "conversations.history p99 ≤ 50 ms (the bench's own bar)"),
      zero('login_failed', 'every login succeeds', ['hubbub']),
      zero('history_failed', 'every history call succeeds', ['hubbub']),
      zero('login_dropped', 'no dropped iteration (open loop, calls in flight capped)', ['hubbub']),
      zero('history_dropped', 'no dropped iteration (open loop, calls in flight capped)', ['hubbub']),
    ],
    drive: on((ctx, set) => sockets.api(ctx, set, watch(ctx, set))),
  },
  reconnect: {
    about: 'every socket dropped at once, reconnect + resume: time to first message, no gap or duplicate',
    runs: 'default',
    sizes: { quick: { reconnectRooms: 20 }, full: { reconnectRooms: 400 } },
    servers: 'hubs',
    figures: ['firstMessageP50', 'firstMessageP99', 'resumedP99', 'missedSentMaxMs'],
    thresholds: [
      ...(['not_resumed', 'gaps', 'duplicates', 'lost', 'connect_failed', 'send_errors'] as const).map((k) =>
        zero(
          `reconnect_${k}`,
          `reconnect storm: ${{ not_resumed: 'every socket resumed', gaps: 'no gap', duplicates: 'no duplicate', lost: 'nothing lost after one more live message', connect_failed: 'every socket connected before the drop', send_errors: 'every send acknowledged' }[k]}`,
          ['hubbub'],
        ),
      ),
      bound('firstMessageP99', '<=', 1000, 20_000, 'reconnect storm: p99 time to first message ≤ 1 s'),
    ],
    drive: on((ctx, set) => sockets.reconnect(ctx, set, watch(ctx, set))),
  },
  persist: {
    about: 'rooms of 2, one writer per room keeping a window of sends in flight (closed loop): durable acknowledged messages/s',
    runs: 'default',
    sizes: { quick: { persistWindow: 4, persistS: 3 }, full: { persistWindow: 8, persistS: 20 } },
    servers: 'hubs',
    figures: FANOUT_FIGURES,
    thresholds: [...deliveryChecks, bound('ackedPerS', '>=', 10_000, 1, '≥ 10k durable messages/s end to end')],
    drive: on((ctx, set) => sockets.fanout(ctx, 'persist', set, watch(ctx, set), sockets.persistJobs(ctx, set))),
  },
  store: {
    about: "the write path alone (the hub's EventWriter + message store, no sockets): durable appends/s",
    runs: 'default',
    sizes: { quick: { storeProducers: 500, storeConvs: 200, storeS: 3 }, full: { storeProducers: 2000, storeConvs: 1000, storeS: 15 } },
    servers: 'own',
    figures: ['appendsPerS', 'writerCpuUsPerAppend', 'appendP50', 'appendP99'],
    thresholds: [
      zero('failed', 'every append of the write path succeeds', ['hubbub']),
      target('appendsPerS', '>=', 10_000, '≥ 10k appends/s on the write path'),
    ],
    drive: (ctx) => sockets.store(ctx, 'Hubbub write path (PostgreSQL)', { DATABASE_URL: ctx.databaseUrl }, ctx.backing),
  },
  peers: {
    about:
      'connect and fanout against bare uWS, plain ws, Socket.IO + Redis adapter and the durable floor; against bare uWS also persist, storing nothing',
    runs: 'default',
    sizes: { quick: {}, full: {} },
    servers: 'peers',
    figures: [],
    thresholds: [],
    drive: on(async (ctx, set) => {
      await sockets.connect(ctx, set, watch(ctx, set));
      await sockets.fanout(ctx, 'fanout', set, watch(ctx, set), sockets.fanoutJobs(ctx, set));
      // The persist workload against a server that stores nothing: the most acked sends/s this generator drives here.
      if (set.kind === 'uws' && ctx.wants('persist'))
        await sockets.fanout(ctx, 'persist', set, watch(ctx, set), sockets.persistJobs(ctx, set));
    }),
  },
  connscale: {
    about: 'idle sockets on one hub process in steps up to the open-file limit, a full collection before each sample: RSS per socket',
    runs: 'default',
    // Steps every connScaleStep sockets up to the target, or the open-file limit (and a last step there).
    sizes: {
      quick: { connScaleTarget: 1000, connScaleStep: 500, connScaleWorkers: 2 },
      full: { connScaleTarget: 100_000, connScaleStep: 5000, connScaleWorkers: 4 },
    },
    servers: 'own',
    seeded: true,
    figures: ['rssPerConnKiB', 'rssSlopeKiBPerConn', 'heapPerConnKiB', 'maxConnections'],
    thresholds: [
      zero('failures', 'every idle socket connects and stays up', ['hubbub']),
      target('maxConnections', '>=', 100_000, '100k authenticated sockets on one hub process'),
      target('rssPerConnKiBAt50k', '<=', 3, '≤ 3 KB RSS per connection at 50k'),
    ],
    drive: (ctx) => sockets.connscale(ctx),
  },
  cassandra: {
    about: 'persist and store again with MESSAGE_STORE=cassandra on one local node',
    runs: 'cassandra',
    sizes: { quick: {}, full: {} },
    servers: 'own',
    seeded: true,
    figures: [],
    thresholds: [],
    drive: async (ctx) => {
      const { startCassandra } = await import('../test/helpers/cassandra.ts');
      const { startHubs } = await import('./harness/servers.ts');
      const { findPid } = await import('./harness/procs.ts');
      ctx.log('starting Cassandra (single node, loopback)');
      const cass = await startCassandra();
      ctx.cleanup(() => cass.stop());
      const store = {
        MESSAGE_STORE: 'cassandra',
        CASSANDRA_CONTACT_POINTS: cass.contactPoints.join(','),
        CASSANDRA_LOCAL_DC: cass.localDataCenter,
      };
      const hubs = await startHubs({
        replicas: 2,
        env: { ...ctx.hubBase, ...store, CASSANDRA_KEYSPACE: 'hubbub_bench', REDIS_PREFIX: ctx.hubBase.REDIS_PREFIX + 'c:' },
        label: 'Hubbub (Cassandra store)',
      });
      ctx.cleanup(() => hubs.stop());
      const pid = findPid(['java', 'cassandra']);
      const cassWatch: Watched[] = pid ? [{ name: 'cassandra', pids: () => [pid] }] : [];
      await sockets.fanout(ctx, 'persist', hubs, [sockets.serverWatch(hubs), ...cassWatch], sockets.persistJobs(ctx, hubs));
      await hubs.stop();
      await sockets.store(
        ctx,
        'Hubbub write path (Cassandra)',
        { DATABASE_URL: ctx.databaseUrl, ...store, CASSANDRA_KEYSPACE: 'hubbub_bench_store' },
        cassWatch,
      );
    },
  },
  soak: {
    about:
      'mixed load with churn on two replicas (sockets living 5–30 s, sends, tRPC calls, logins): RSS floor slope, connection gauge drift',
    runs: 'soak',
    sizes: {
      quick: { soakMinutes: 1, soakUsers: 100, soakSockets: 300, soakSendRate: 100, soakCallRate: 20, soakLoginRate: 1, soakSampleS: 5 },
      full: { soakMinutes: 20, soakUsers: 100, soakSockets: 300, soakSendRate: 100, soakCallRate: 20, soakLoginRate: 1, soakSampleS: 5 },
    },
    servers: 'own',
    figures: ['rssFloorSlopeMiBPerMin', 'heapFloorSlopeMiBPerMin', 'maxGaugeDrift', 'finalGauge'],
    thresholds: [
      bound('rssFloorSlopeMiBPerMin', '<=', 1, 50, 'soak: hub RSS slope over the last half near zero (per-minute floor ≤ 1 MiB/min)'),
      bound('finalGauge', '<=', 0, 0, 'soak: hubbub_ws_connections reads 0 once every socket is closed (no gauge drift)'),
    ],
    drive: async (ctx) => (await lazy.soak()).soak(ctx),
  },
  notify: {
    about: 'notifications on against off, alternating phases at one send rate: latency, hub CPU, pushes per worker CPU-second',
    runs: 'named',
    sizes: {
      quick: { notifyRooms: 5, notifySize: 20, notifyRate: 50, notifyS: 6, notifyDelayMs: 2000 },
      full: { notifyRooms: 10, notifySize: 20, notifyRate: 100, notifyS: 12, notifyDelayMs: 5000 },
    },
    servers: 'own',
    figures: ['latencyP99Off', 'latencyP99On', 'p99Ratio', 'hubCpuRatio', 'pushesPerWorkerCpuS'],
    thresholds: [
      ...deliveryChecks.slice(0, 7).map((r) => ({ ...r, servers: ['hubbub'] as ServerKind[] })),
      bound('pushesDelivered', '>=', 1, 1, 'offline members get pushes'),
    ],
    drive: async (ctx) => (await lazy.notify()).notify(ctx),
  },
  attachments: {
    about:
      'uploads of 1 and 10 MB presigned against through the hub (time, hub CPU per upload), thumbnail of a 12 MP photo, fanout without and with uploads running',
    runs: 'named',
    sizes: { quick: {}, full: {} },
    servers: 'own',
    figures: ['upload10MbHubCpuMs_direct', 'upload10MbHubCpuMs_hub', 'thumbnail12MpMsP50', 'p99Ratio'],
    thresholds: [...deliveryChecks.slice(0, 7).map((r) => ({ ...r, servers: ['hubbub'] as ServerKind[] }))],
    drive: async (ctx) => (await lazy.attachments()).attachments(ctx),
  },
  payments: {
    about: 'tips against plain messages on the domain services, durable PostgreSQL: what the ledger costs',
    runs: 'named',
    sizes: { quick: { paymentsPayers: 20, paymentsPer: 20 }, full: { paymentsPayers: 50, paymentsPer: 60 } },
    servers: 'own',
    figures: ['tipsPerS', 'messagesPerS', 'tipsVsMessages', 'tipP99', 'messageP99'],
    thresholds: [zero('ledger_inconsistent', 'the ledger stays consistent: postings sum to zero, balances equal postings', ['hubbub'])],
    drive: async (ctx) => (await lazy.inProcess()).payments(ctx),
  },
  frames: {
    about: 'client-frame validation: the fast path against zod, alternating round by round',
    runs: 'named',
    sizes: { quick: { framesCount: 5000, framesRounds: 5 }, full: { framesCount: 20_000, framesRounds: 15 } },
    servers: 'own',
    figures: ['mixBytesFastVsZod', 'mixFastVsZod', 'mixZodNs', 'mixFastNs'],
    thresholds: [],
    drive: async (ctx) => (await lazy.inProcess()).frames(ctx),
  },
};

export const THRESHOLDS: Threshold[] = [
  {
    id: 'generator.eldP99',
    scenario: '*',
    servers: 'all',
    metric: 'generatorEldP99Ms',
    op: '<=',
    full: 50,
    quick: 2000,
    target: 'the generator measured the server, not its own event loop (else the scenario is invalid)',
  },
  ...Object.entries(SCENARIOS).flatMap(([scenario, s]) =>
    s.thresholds.map((t): Threshold => ({ ...t, id: `${scenario}.${t.metric}`, scenario, servers: t.servers ?? 'all' })),
  ),
];

/** Ratios the targets need across scenarios: Hubbub's fanout against the peers'. */
export function derive(all: ScenarioResult[]) {
  const dpc = (kind: ServerKind) => Number(all.find((s) => s.kind === kind && s.name === 'fanout')?.figures.deliveriesPerServerCpuS);
  const hub = all.find((s) => s.kind === 'hubbub' && s.name === 'fanout');
  const ratios = { vsWs: 'ws', vsSocketIo: 'socketio', vsFloor: 'floor', vsUws: 'uws' } as const;
  for (const [k, kind] of Object.entries(ratios))
    if (hub && dpc(kind)) hub.figures[k] = Math.round((dpc('hubbub') / dpc(kind)) * 100) / 100;
}

/** Parses `--threshold ID=VALUE` options, refusing ids the table does not have. */
export function parseOverrides(list: string[], table: Threshold[] = THRESHOLDS): Map<string, number> {
  const out = new Map<string, number>();
  for (const kv of list) {
    const at = kv.lastIndexOf('=');
    const [id, v] = [kv.slice(0, at), Number(kv.slice(at + 1))];
    if (at < 1 || !Number.isFinite(v)) throw new Error(`--threshold ${kv}: expected ID=NUMBER`);
    if (!table.some((t) => t.id === id))
      throw new Error(`--threshold ${id}: no such threshold (one of ${table.map((t) => t.id).join(', ')})`);
    out.set(id, v);
  }
  return out;
}

const value = (s: ScenarioFigures, metric: string) => {
  const v = s.figures[metric] ?? s.counters[metric];
  return typeof v === 'number' ? v : NaN;
};

/** The bound of `t` in this run: an override, a relative bound (full runs), or the mode's. */
function boundOf(t: Threshold, mode: 'quick' | 'full', s: ScenarioFigures, all: ScenarioFigures[], overrides: Map<string, number>): number {
  const o = overrides.get(t.id);
  if (o !== undefined) return o;
  if (t.relative && mode === 'full') {
    const base = all.find((x) => x.name === t.relative!.scenario && x.kind === s.kind);
    const b = base ? value(base, t.relative.metric) : NaN;
    return Number.isFinite(b) ? Math.round(b * t.relative.factor * 100) / 100 : Infinity;
  }
  return mode === 'quick' ? t.quick : t.full;
}

/**
 * Checks every scenario against the table: a missing figure (NaN) misses. A scenario that misses `generator.eldP99` is
 * returned as invalid (the report shows none of its latencies as the server's).
 */
export function evaluate(all: ScenarioFigures[], mode: 'quick' | 'full', overrides = new Map<string, number>(), table = THRESHOLDS) {
  const misses: (Miss & { grade?: true })[] = [];
  const invalid = new Set<ScenarioFigures>();
  for (const s of all) {
    for (const t of table) {
      if ((t.scenario !== '*' && t.scenario !== s.name) || (t.servers !== 'all' && !t.servers.includes(s.kind))) continue;
      const v = value(s, t.metric);
      if (t.scenario === '*' && Number.isNaN(v)) continue; // a scenario without a generator
      const b = boundOf(t, mode, s, all, overrides);
      if (t.op === '<=' ? v <= b : t.op === '>=' ? v >= b : v === b) continue;
      if (t.id === 'generator.eldP99') invalid.add(s);
      misses.push({
        id: t.id,
        scenario: s.name,
        server: s.server,
        value: v,
        op: t.op,
        bound: b,
        target: t.target,
        ...(t.grade ? { grade: true as const } : {}),
      });
    }
  }
  return { misses, invalid };
}

/** Every target (a grade row, or a bound that differs between quick and full runs) against its full-run bound. */
export function targets(all: ScenarioFigures[], overrides: Map<string, number>) {
  const rows = THRESHOLDS.filter((t) => t.grade || t.relative || (t.full !== t.quick && t.id !== 'generator.eldP99'));
  const missed = evaluate(all, 'full', overrides, rows).misses;
  return all.flatMap((s) =>
    rows
      .filter((t) => s.kind === 'hubbub' && t.scenario === s.name && !(t.grade && Number.isNaN(value(s, t.metric))))
      .map((t) => {
        const miss = missed.find((m) => m.id === t.id && m.server === s.server);
        return {
          id: t.id,
          scenario: s.name,
          server: s.server,
          value: value(s, t.metric),
          op: t.op,
          bound: miss?.bound ?? boundOf(t, 'full', s, all, overrides),
          target: t.target,
          met: !miss,
        };
      }),
  );
}
