/**
 * The bench's one table: every scenario with its sizes (quick and full), the servers it runs against, its drive, the
 * figures the report shows (side by side over servers and against its baseline; a label ending in ↓ is better lower),
 * and its thresholds. A threshold has a bound for full runs (the target it stands for) and one for quick runs (CI: a
 * few seconds a scenario on a shared 2-core box), which keeps every correctness bound and only sanity bounds on latency
 * and throughput. A missed one fails `npm run bench`; rows marked `grade` are targets the report grades without failing
 * the run. `--threshold ID=VALUE` overrides one bound. How rows are checked is harness/thresholds.ts.
 */
import * as sockets from './drive/sockets.ts';
import type { Ctx } from './harness/context.ts';
import type { ChartSpecs } from './harness/report.ts';
import type { ServerKind, ServerSet } from './harness/servers.ts';
import type { Op, Threshold } from './harness/thresholds.ts';

type Row = Omit<Threshold, 'id' | 'scenario' | 'servers'> & { servers?: Threshold['servers'] };
/** A size for both modes, or `[quick, full]`. */
type SizeRows = Record<string, number | [number, number]>;
interface Scenario {
  about: string;
  /** `default`: runs without --only; `cassandra`/`soak`: with that flag; `named`: only when --only names it. */
  runs: 'default' | 'cassandra' | 'soak' | 'named';
  sizes: SizeRows;
  /** The two hub replicas shared by consecutive scenarios, the four peers one at a time, or what its drive starts. */
  servers: 'hubs' | 'peers' | 'own';
  /** Its drive reads the bench's seed (users, rooms, tokens); scenarios against the hubs or the peers all do. */
  seeded?: true;
  /** The key figures: name → label with its unit. */
  figures: Record<string, string>;
  /** Figures derived after the run: Hubbub's figure ÷ a peer's in this scenario. */
  vs?: Record<string, [string, ServerKind]>;
  thresholds: Row[];
  /** `set`: the hubs, or each peer in turn, for `servers: 'hubs' | 'peers'`. */
  drive(ctx: Ctx, set?: ServerSet): Promise<unknown>;
}

/** Every scenario's sizes (what `--set` may change), and `common`: those more than one reads (the seed, the generator's
 * processes, timeouts). */
const SIZES = {
  common: {
    ...{ fanoutUsers: [500, 10_000], roomSize: 25, persistUsers: [200, 1000], genProcs: 2, bodySize: 100, drainS: [10, 20] },
    ...{
      connectTimeoutS: [60, 180],
      resumeTimeoutS: [30, 180],
      handshakeTimeoutMs: 20_000,
      fanoutRate: [200, 2000],
      connectN: [500, 10_000],
    },
  },
  idle: {},
  connect: { holdS: [1, 8] },
  fanout: { fanoutS: [4, 30] },
  login: { loginRate: 20 },
  api: { apiS: [4, 20], historyRate: [50, 200] },
  reconnect: { reconnectRooms: [20, 400] },
  persist: { persistWindow: [4, 8], persistS: [3, 20] },
  store: { storeProducers: [500, 2000], storeConvs: [200, 1000], storeS: [3, 15] },
  search: {},
  peers: {},
  connscale: { connScaleTarget: [1000, 100_000], connScaleStep: [500, 5000], connScaleWorkers: [2, 4] },
  cassandra: {},
  soak: { soakMinutes: [1, 20], soakUsers: 100, soakSockets: 300, soakSendRate: 100, soakCallRate: 20, soakLoginRate: 1, soakSampleS: 5 },
  notify: { notifyRooms: [5, 10], notifySize: 20, notifyRate: [50, 100], notifyS: [6, 12], notifyDelayMs: [2000, 5000] },
  // Uploads per second while the send path is measured; 0: two uploaders back to back (saturating).
  attachments: { uploadsPerS: 0 },
  payments: { paymentsPayers: [20, 50], paymentsPer: [20, 60] },
  frames: { framesCount: [5000, 20_000], framesRounds: [5, 15] },
} satisfies Record<string, SizeRows>;
export const COMMON: SizeRows = SIZES.common;

/** The sizes of `rows` in `mode`. */
export const sizesIn = (rows: SizeRows, mode: 'quick' | 'full') =>
  Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, typeof v === 'number' ? v : v[mode === 'quick' ? 0 : 1]]));

const row = (metric: string, op: Op, full: number, quick: number, target: string, servers: Threshold['servers'] = ['hubbub']): Row => ({
  ...{ metric, op, full, quick, target, servers },
});
const zero = (metric: string, target: string, servers: Threshold['servers'] = 'all') => row(metric, '==', 0, 0, target, servers);
const grade = (metric: string, op: Op, full: number, text: string): Row => ({ ...row(metric, op, full, full, text), grade: true });
const DELIVERY: [string, string][] = [
  ['lost', 'every receiver gets every acknowledged message'],
  ['out_of_order', 'in order (per-room seq; per-sender order for Socket.IO and the durable floor)'],
  ['duplicates', 'exactly once'],
  ['send_errors', 'no send refused'],
  ['unacked', 'every send acknowledged'],
  ['connect_failed', 'every member socket resumed'],
  ['unexpected_close', 'no socket dropped by the server'],
];
const delivery = (servers: Threshold['servers'] = 'all') => DELIVERY.map(([k, text]) => zero(`fanout_${k}`, text, servers));
const deliveryChecks = [...delivery(), row('fanout_delivered', '>=', 1, 1, 'something was delivered', 'all')];
const FANOUT_FIGURES = {
  deliveriesPerServerCpuS: 'deliveries per server CPU-second',
  deliveriesPerAllServerCpuS: 'deliveries per CPU-second of server, PostgreSQL and Redis',
  deliveredPerS: 'deliveries/s achieved',
  ackedPerS: 'acknowledged sends/s',
  serverCpuPct: 'server CPU % (of one core) in the send window ↓',
  serverCpuMsPer1k: 'server CPU ms per 1,000 deliveries ↓',
  pgCpuUsPerAppend: 'PostgreSQL CPU µs per append ↓',
  latencyP50: 'send→deliver p50 ms ↓',
  latencyP99: 'send→deliver p99 ms ↓',
  latencyP999: 'send→deliver p99.9 ms ↓',
  ackP99: 'send→ack p99 ms ↓',
  faults: 'lost + out of order + duplicates ↓',
};
const RECONNECT_CHECKS = {
  not_resumed: 'every socket resumed',
  gaps: 'no gap',
  duplicates: 'no duplicate',
  lost: 'nothing lost after one more live message',
  connect_failed: 'every socket connected before the drop',
  send_errors: 'every send acknowledged',
};
/** Figures named after themselves, for scenarios whose names say their unit. */
const same = (...names: string[]) => Object.fromEntries(names.map((n) => [n, n]));
const lazy = {
  idle: () => import('./drive/idle.ts'),
  soak: () => import('./drive/soak.ts'),
  notify: () => import('./drive/notify.ts'),
  attachments: () => import('./drive/attachments.ts'),
  search: () => import('./drive/search.ts'),
  inProcess: () => import('./drive/in-process.ts'),
  connscale: () => import('./drive/connscale.ts'),
};

export const SCENARIOS: Record<string, Scenario> = {
  idle: {
    about: '`npm start` as a user runs it (fresh DATA_DIR; embedded, then PostgreSQL + Redis), idle RSS; tsx the baseline',
    runs: 'default',
    sizes: SIZES.idle,
    servers: 'own',
    figures: same('rssEmbeddedMiB', 'rssPostgresMiB', 'pssEmbeddedMiB', 'pssPostgresMiB', 'rssEmbeddedVsTsx', 'rssPostgresVsTsx'),
    // Quick runs (a busy CI box, collections later) leave a margin.
    thresholds: [
      row('rssEmbeddedMiB', '<=', 250, 320, 'npm start idle RSS ≤ 250 MB embedded (PGlite, in-process bus and jobs)'),
      row('rssPostgresMiB', '<=', 150, 200, 'npm start idle RSS ≤ 150 MB with PostgreSQL and Redis'),
    ],
    drive: async (ctx) => (await lazy.idle()).idleMemory(ctx),
  },
  connect: {
    about: 'connection storm: N authenticated sockets at once over the two replicas, held; time to `resumed`, RSS and CPU per socket',
    runs: 'default',
    sizes: SIZES.connect,
    servers: 'hubs',
    figures: {
      connections: 'sockets held',
      rssPerConnKiB: 'RSS per connection KiB ↓',
      serverCpuMsPerConn: 'server CPU ms per connection ↓',
      connectP50: 'time to resumed p50 ms ↓',
      connectP99: 'time to resumed p99 ms ↓',
    },
    thresholds: [
      zero('connect_failed', 'every socket of the storm connects and resumes'),
      zero('missing', 'every socket of the storm connects and resumes'),
      zero('connect_dropped_idle', 'no idle socket dropped'),
      row('connectP95', '<=', 10_000, 30_000, 'connection storm: p95 time to resumed ≤ 10 s', 'all'),
    ],
    drive: (ctx, set) => sockets.connect(ctx, set!),
  },
  fanout: {
    about: 'rooms of 25 over the two replicas at a constant total send rate (open loop): send→deliver latency, exactly once and in order',
    runs: 'default',
    sizes: SIZES.fanout,
    servers: 'hubs',
    figures: FANOUT_FIGURES,
    vs: {
      ...{ vsWs: ['deliveriesPerServerCpuS', 'ws'], vsSocketIo: ['deliveriesPerServerCpuS', 'socketio'] },
      ...{ vsFloor: ['deliveriesPerServerCpuS', 'floor'], vsUws: ['deliveriesPerServerCpuS', 'uws'] },
      ...{
        allCpuVsFloor: ['deliveriesPerAllServerCpuS', 'floor'],
        p99VsFloor: ['latencyP99', 'floor'],
        p999VsFloor: ['latencyP999', 'floor'],
      },
      ...{ ackP99VsFloor: ['ackP99', 'floor'], pgPerAppendVsFloor: ['pgCpuUsPerAppend', 'floor'] },
    },
    thresholds: [
      ...deliveryChecks,
      row('latencyP50', '<=', 2, 2000, 'send→deliver p50 ≤ 2 ms'),
      row('latencyP99', '<=', 10, 5000, 'send→deliver p99 ≤ 10 ms'),
      row('latencyP999', '<=', 25, 10_000, 'send→deliver p99.9 ≤ 25 ms'),
      grade('vsWs', '>=', 3, 'fanout deliveries per server CPU-second ≥ 3× plain ws'),
      grade('vsSocketIo', '>=', 8, 'fanout deliveries per server CPU-second ≥ 8× Socket.IO + Redis adapter'),
    ],
    drive: (ctx, set) => sockets.fanout(ctx, 'fanout', set!, sockets.fanoutJobs(ctx, set!)),
  },
  login: {
    about: 'the fanout with auth.login at `loginRate` in the send window',
    runs: 'default',
    sizes: SIZES.login,
    servers: 'hubs',
    figures: { ...FANOUT_FIGURES, loginP99: 'login p99 ms ↓' },
    thresholds: [
      ...deliveryChecks,
      row('loginP99', '<=', 50, 20_000, 'login p99 ≤ 50 ms at 20/s during fanout'),
      zero('login_failed', 'every login succeeds', ['hubbub']),
      zero('login_dropped', 'no login dropped by the open-loop scheduler', ['hubbub']),
      {
        ...row('latencyP99', '<=', Infinity, Infinity, 'fanout p99 during logins ≤ 1.1× without'),
        relative: { scenario: 'fanout', metric: 'latencyP99', factor: 1.1 },
      },
    ],
    drive: (ctx, set) => sockets.fanout(ctx, 'login', set!, sockets.fanoutJobs(ctx, set!), ctx.sizes.loginRate),
  },
  api: {
    about: 'auth.login and conversations.history at constant arrival rates (open loop)',
    runs: 'default',
    sizes: SIZES.api,
    servers: 'hubs',
    figures: { loginP50: 'login p50 ms ↓', loginP99: 'login p99 ms ↓', historyP50: 'history p50 ms ↓', historyP99: 'history p99 ms ↓' },
    thresholds: [
      row('loginP99', '<=', 50, 20_000, 'auth.login p99 ≤ 50 ms at 20/s'),
      row('historyP99', '<=', 50, 20_000, "conversations.history p99 ≤ 50 ms (the bench's own bar)"),
      zero('login_failed', 'every login succeeds', ['hubbub']),
      zero('history_failed', 'every history call succeeds', ['hubbub']),
      zero('login_dropped', 'no dropped iteration (open loop, calls in flight capped)', ['hubbub']),
      zero('history_dropped', 'no dropped iteration (open loop, calls in flight capped)', ['hubbub']),
    ],
    drive: (ctx, set) => sockets.api(ctx, set!),
  },
  reconnect: {
    about: 'every socket dropped at once, reconnect + resume: time to first message, no gap or duplicate',
    runs: 'default',
    sizes: SIZES.reconnect,
    servers: 'hubs',
    figures: {
      firstMessageP50: 'drop → first message p50 ms ↓',
      firstMessageP99: 'drop → first message p99 ms ↓',
      resumedP99: 'drop → resumed p99 ms ↓',
      missedSentMaxMs: 'drop → missed messages sent, max ms ↓',
    },
    thresholds: [
      ...Object.entries(RECONNECT_CHECKS).map(([k, text]) => zero(`reconnect_${k}`, `reconnect storm: ${text}`, ['hubbub'])),
      row('firstMessageP99', '<=', 1000, 20_000, 'reconnect storm: p99 time to first message ≤ 1 s'),
    ],
    drive: (ctx, set) => sockets.reconnect(ctx, set!),
  },
  persist: {
    about: 'rooms of 2, one writer per room keeping a window of sends in flight (closed loop): durable acknowledged messages/s',
    runs: 'default',
    sizes: SIZES.persist,
    servers: 'hubs',
    figures: FANOUT_FIGURES,
    thresholds: [...deliveryChecks, row('ackedPerS', '>=', 10_000, 1, '≥ 10k durable messages/s end to end')],
    drive: (ctx, set) => sockets.fanout(ctx, 'persist', set!, sockets.persistJobs(ctx, set!)),
  },
  store: {
    about: "the write path alone (the hub's EventWriter + message store, no sockets): durable appends/s",
    runs: 'default',
    sizes: SIZES.store,
    servers: 'own',
    figures: { appendsPerS: 'appends/s', writerCpuUsPerAppend: 'writer CPU µs per append ↓', appendP50: 'p50 ms ↓', appendP99: 'p99 ms ↓' },
    thresholds: [
      zero('failed', 'every append of the write path succeeds', ['hubbub']),
      grade('appendsPerS', '>=', 10_000, '≥ 10k appends/s on the write path'),
    ],
    drive: (ctx) => sockets.store(ctx, 'Hubbub write path (PostgreSQL)', { DATABASE_URL: ctx.databaseUrl }, ctx.backing),
  },
  search: {
    about:
      'messages.search on 1M messages over 10k conversations (a user in 100): p99 per query kind, index size, send path with the indexer off vs on',
    runs: 'named',
    sizes: SIZES.search,
    servers: 'own',
    figures: same('rareP99', 'commonP99', 'phraseP99', 'fromCommonP99', 'indexBytesPerMessage', 'throughputOnVsOff', 'cpuOnVsOff'),
    thresholds: [
      ...['rareP99', 'commonP99', 'phraseP99', 'fromCommonP99'].map((m) => grade(m, '<=', 50, `search ${m.slice(0, -3)} p99 ≤ 50 ms`)),
      grade('throughputOnVsOff', '>=', 0.9, 'send path with search indexing ≥ 0.9× the throughput without'),
      grade('cpuOnVsOff', '<=', 1.1, 'PostgreSQL CPU per append with search indexing ≤ 1.1× without'),
    ],
    drive: async (ctx) => (await lazy.search()).search(ctx),
  },
  peers: {
    about:
      'connect and fanout against bare uWS, plain ws, Socket.IO + Redis adapter and the durable floor; against bare uWS also persist, storing nothing',
    runs: 'default',
    sizes: SIZES.peers,
    servers: 'peers',
    figures: {},
    thresholds: [],
    drive: async (ctx, peer) => {
      const set = peer!;
      await sockets.connect(ctx, set);
      await sockets.fanout(ctx, 'fanout', set, sockets.fanoutJobs(ctx, set));
      // The persist workload against a server that stores nothing: the most acked sends/s this generator drives here.
      if (set.kind === 'uws' && ctx.wants('persist')) await sockets.fanout(ctx, 'persist', set, sockets.persistJobs(ctx, set));
    },
  },
  connscale: {
    about: 'idle sockets on one hub process in steps up to the open-file limit, a full collection before each sample: RSS per socket',
    runs: 'default',
    // Steps every connScaleStep sockets up to the target, or the open-file limit (and a last step there).
    sizes: SIZES.connscale,
    servers: 'own',
    seeded: true,
    figures: same('rssPerConnKiB', 'rssSlopeKiBPerConn', 'heapPerConnKiB', 'maxConnections'),
    thresholds: [
      zero('failures', 'every idle socket connects and stays up', ['hubbub']),
      grade('maxConnections', '>=', 100_000, '100k authenticated sockets on one hub process'),
      grade('rssPerConnKiBAt50k', '<=', 3, '≤ 3 KB RSS per connection at 50k'),
    ],
    drive: async (ctx) => (await lazy.connscale()).connscale(ctx),
  },
  cassandra: {
    about: 'persist and store again with MESSAGE_STORE=cassandra on one local node',
    runs: 'cassandra',
    sizes: SIZES.cassandra,
    servers: 'own',
    seeded: true,
    figures: {},
    thresholds: [],
    drive: (ctx) => sockets.cassandra(ctx),
  },
  soak: {
    about:
      'mixed load with churn on two replicas (sockets living 5–30 s, sends, tRPC calls, logins): RSS floor slope, connection gauge drift',
    runs: 'soak',
    sizes: SIZES.soak,
    servers: 'own',
    figures: same('rssFloorSlopeMiBPerMin', 'heapFloorSlopeMiBPerMin', 'maxGaugeDrift', 'finalGauge'),
    thresholds: [
      row('rssFloorSlopeMiBPerMin', '<=', 1, 50, 'soak: hub RSS slope over the last half near zero (per-minute floor ≤ 1 MiB/min)'),
      row('finalGauge', '<=', 0, 0, 'soak: hubbub_ws_connections reads 0 once every socket is closed (no gauge drift)'),
    ],
    drive: async (ctx) => (await lazy.soak()).soak(ctx),
  },
  notify: {
    about: 'notifications on against off, alternating phases at one send rate: latency, hub CPU, pushes per worker CPU-second',
    runs: 'named',
    sizes: SIZES.notify,
    servers: 'own',
    figures: same('latencyP99Off', 'latencyP99On', 'p99Ratio', 'hubCpuRatio', 'pushesPerWorkerCpuS'),
    thresholds: [...delivery(['hubbub']), row('pushesDelivered', '>=', 1, 1, 'offline members get pushes')],
    drive: async (ctx) => (await lazy.notify()).notify(ctx),
  },
  attachments: {
    about:
      'uploads of 1 and 10 MB presigned against through the hub (time, hub CPU per upload), thumbnail of a 12 MP photo, fanout without and with uploads running',
    runs: 'named',
    sizes: SIZES.attachments,
    servers: 'own',
    figures: same('upload10MbHubCpuMs_direct', 'upload10MbHubCpuMs_hub', 'thumbnail12MpMsP50', 'p99Ratio'),
    thresholds: delivery(['hubbub']),
    drive: async (ctx) => (await lazy.attachments()).attachments(ctx),
  },
  payments: {
    about: 'tips against plain messages on the domain services, durable PostgreSQL: what the ledger costs',
    runs: 'named',
    sizes: SIZES.payments,
    servers: 'own',
    figures: same('tipsPerS', 'messagesPerS', 'tipsVsMessages', 'tipP99', 'messageP99'),
    thresholds: [zero('ledger_inconsistent', 'the ledger stays consistent: postings sum to zero, balances equal postings', ['hubbub'])],
    drive: async (ctx) => (await lazy.inProcess()).payments(ctx),
  },
  frames: {
    about: 'client-frame validation: the fast path against zod, alternating round by round',
    runs: 'named',
    sizes: SIZES.frames,
    servers: 'own',
    figures: same('mixBytesFastVsZod', 'mixFastVsZod', 'mixZodNs', 'mixFastNs'),
    thresholds: [],
    drive: async (ctx) => (await lazy.inProcess()).frames(ctx),
  },
};

/** Every size of the table: what `--set` may change. */
export type Sizes = Record<{ [K in keyof typeof SIZES]: keyof (typeof SIZES)[K] }[keyof typeof SIZES], number>;

/** The charts of the report, drawn from the points scenarios attach. */
export const CHARTS: ChartSpecs = {
  latency: {
    title: 'Fanout send→deliver latency by percentile',
    x: 'nines (1 = p90, 2 = p99, 3 = p99.9, 5 = max)',
    y: 'ms (log)',
    logY: true,
  },
  rss: { title: 'Server RSS against open sockets', x: 'open sockets', y: 'server RSS (MiB)' },
  connect: { title: 'Connect storm: sockets resumed over time', x: 'seconds since the storm began', y: 'sockets resumed' },
  soak: { title: 'Soak: each replica over time', x: 'minutes', y: 'value', facet: true },
};

export const THRESHOLDS: Threshold[] = [
  {
    ...row(
      'generatorEldP99Ms',
      '<=',
      50,
      2000,
      'the generator measured the server, not its own event loop (else the scenario is invalid)',
      'all',
    ),
    id: 'generator.eldP99',
    scenario: '*',
    servers: 'all',
  },
  ...Object.entries(SCENARIOS).flatMap(([scenario, s]) =>
    s.thresholds.map((t): Threshold => ({ ...t, id: `${scenario}.${t.metric}`, scenario, servers: t.servers ?? 'all' })),
  ),
];
