/**
 * Every threshold of the bench in one table: which scenario, which figure, the bound (full run
 * and quick run), and the target it stands for. A missed one fails `npm run bench` (exit 1) and
 * the report names it by its id. Full runs use the targets themselves; quick runs (CI, a few
 * seconds per scenario on a shared 2-core box) keep every correctness bound (nothing lost,
 * duplicated or out of order, every socket connected and resumed) but only sanity bounds on
 * latency and throughput: they catch breakage, the report still grades the real targets.
 *
 * A scenario whose generator event-loop p99 passes `generator.eldP99` is marked invalid: its
 * latencies measured the generator, not the server, and are not graded.
 *
 * `--threshold ID=VALUE` (repeatable) overrides a bound for this run, e.g. to show that a
 * threshold can fail: `npm run bench -- --quick --only=fanout --threshold fanout.latencyP50=0`.
 */
import type { ServerKind } from './servers.ts';

export type Op = '<=' | '>=' | '==';

export interface Threshold {
  /** `<scenario>.<metric>`, unique; what `--threshold` names and the report prints. */
  id: string;
  /** Scenario name as in the results (`fanout`, `persist (PostgreSQL)`, …); `*` for every scenario. */
  scenario: string;
  /** Which servers it applies to. */
  servers: 'all' | ServerKind[];
  /** A key of the scenario's figures or counters. */
  metric: string;
  op: Op;
  full: number;
  quick: number;
  /** Full runs only: the bound is `factor` × another scenario's figure (of the same server). */
  relative?: { scenario: string; metric: string; factor: number };
  /** The target or check it stands for. */
  target: string;
}

const zero = (scenario: string, metric: string, target: string, servers: Threshold['servers'] = 'all'): Threshold => ({
  id: `${scenario}.${metric}`,
  scenario,
  servers,
  metric,
  op: '==',
  full: 0,
  quick: 0,
  target,
});

const fanoutChecks = (s: string): Threshold[] => [
  zero(s, 'fanout_lost', 'every receiver gets every acknowledged message'),
  zero(s, 'fanout_out_of_order', 'in order (per-room seq; per-sender order for Socket.IO)'),
  zero(s, 'fanout_duplicates', 'exactly once'),
  zero(s, 'fanout_send_errors', 'no send refused'),
  zero(s, 'fanout_unacked', 'every send acknowledged'),
  zero(s, 'fanout_connect_failed', 'every member socket resumed'),
  zero(s, 'fanout_unexpected_close', 'no socket dropped by the server'),
  { id: `${s}.fanout_delivered`, scenario: s, servers: 'all', metric: 'fanout_delivered', op: '>=', full: 1, quick: 1, target: 'something was delivered' },
];

export const THRESHOLDS: Threshold[] = [
  { id: 'generator.eldP99', scenario: '*', servers: 'all', metric: 'generatorEldP99Ms', op: '<=', full: 50, quick: 2000, target: 'the generator measured the server, not its own event loop (else the scenario is invalid)' },

  zero('connect', 'connect_failed', 'every socket of the storm connects and resumes'),
  zero('connect', 'missing', 'every socket of the storm connects and resumes'),
  zero('connect', 'connect_dropped_idle', 'no idle socket dropped'),
  { id: 'connect.connectP95', scenario: 'connect', servers: 'all', metric: 'connectP95', op: '<=', full: 10_000, quick: 30_000, target: 'connection storm: p95 time to resumed ≤ 10 s' },

  ...fanoutChecks('fanout'),
  { id: 'fanout.latencyP50', scenario: 'fanout', servers: ['hubbub'], metric: 'latencyP50', op: '<=', full: 2, quick: 2000, target: 'send→deliver p50 ≤ 2 ms' },
  { id: 'fanout.latencyP99', scenario: 'fanout', servers: ['hubbub'], metric: 'latencyP99', op: '<=', full: 10, quick: 5000, target: 'send→deliver p99 ≤ 10 ms' },
  { id: 'fanout.latencyP999', scenario: 'fanout', servers: ['hubbub'], metric: 'latencyP999', op: '<=', full: 25, quick: 10_000, target: 'send→deliver p99.9 ≤ 25 ms' },

  ...fanoutChecks('fanout+login'),
  { id: 'fanout+login.loginP99', scenario: 'fanout+login', servers: ['hubbub'], metric: 'loginP99', op: '<=', full: 50, quick: 20_000, target: 'login p99 ≤ 50 ms at 20/s during fanout' },
  zero('fanout+login', 'login_failed', 'every login succeeds', ['hubbub']),
  zero('fanout+login', 'login_dropped', 'no login dropped by the open-loop scheduler', ['hubbub']),
  {
    id: 'fanout+login.latencyP99',
    scenario: 'fanout+login',
    servers: ['hubbub'],
    metric: 'latencyP99',
    op: '<=',
    full: Infinity,
    quick: Infinity,
    relative: { scenario: 'fanout', metric: 'latencyP99', factor: 1.1 },
    target: 'fanout p99 during logins ≤ 1.1× without',
  },

  { id: 'api.loginP99', scenario: 'api', servers: ['hubbub'], metric: 'loginP99', op: '<=', full: 50, quick: 20_000, target: 'auth.login p99 ≤ 50 ms at 20/s' },
  { id: 'api.historyP99', scenario: 'api', servers: ['hubbub'], metric: 'historyP99', op: '<=', full: 50, quick: 20_000, target: "conversations.history p99 ≤ 50 ms (the bench's own bar)" },
  zero('api', 'login_failed', 'every login succeeds', ['hubbub']),
  zero('api', 'history_failed', 'every history call succeeds', ['hubbub']),
  zero('api', 'login_dropped', 'no dropped iteration (open loop, calls in flight capped)', ['hubbub']),
  zero('api', 'history_dropped', 'no dropped iteration (open loop, calls in flight capped)', ['hubbub']),

  zero('reconnect', 'reconnect_not_resumed', 'reconnect storm: every socket resumed', ['hubbub']),
  zero('reconnect', 'reconnect_gaps', 'reconnect storm: no gap', ['hubbub']),
  zero('reconnect', 'reconnect_duplicates', 'reconnect storm: no duplicate', ['hubbub']),
  zero('reconnect', 'reconnect_lost', 'reconnect storm: nothing lost after one more live message', ['hubbub']),
  zero('reconnect', 'reconnect_connect_failed', 'reconnect storm: every socket connected before the drop', ['hubbub']),
  zero('reconnect', 'reconnect_send_errors', 'reconnect storm: every send acknowledged', ['hubbub']),
  { id: 'reconnect.firstMessageP99', scenario: 'reconnect', servers: ['hubbub'], metric: 'firstMessageP99', op: '<=', full: 1000, quick: 20_000, target: 'reconnect storm: p99 time to first message ≤ 1 s' },

  ...fanoutChecks('persist (PostgreSQL)'),
  { id: 'persist (PostgreSQL).ackedPerS', scenario: 'persist (PostgreSQL)', servers: ['hubbub'], metric: 'ackedPerS', op: '>=', full: 10_000, quick: 1, target: '≥ 10k durable messages/s end to end (PostgreSQL)' },
  ...fanoutChecks('persist (Cassandra)'),
  { id: 'persist (Cassandra).ackedPerS', scenario: 'persist (Cassandra)', servers: ['hubbub'], metric: 'ackedPerS', op: '>=', full: 10_000, quick: 1, target: '≥ 10k durable messages/s end to end (Cassandra)' },
  ...fanoutChecks('load-generator ceiling'),

  zero('store path (PostgreSQL)', 'failed', 'every append of the write path succeeds', ['hubbub']),
  zero('store path (Cassandra)', 'failed', 'every append of the write path succeeds', ['hubbub']),

  zero('conn-scale', 'failures', 'every idle socket connects and stays up', ['hubbub']),

  // idle (load-tests/idle.ts): `npm start` as a user runs it, a fresh DATA_DIR, idle. Quick runs
  // (CI, a busy box, collections later) leave a margin; full runs grade the targets.
  { id: 'idle.rssEmbeddedMiB', scenario: 'idle', servers: ['hubbub'], metric: 'rssEmbeddedMiB', op: '<=', full: 250, quick: 320, target: 'npm start idle RSS ≤ 250 MB embedded (PGlite, in-process bus and jobs)' },
  { id: 'idle.rssPostgresMiB', scenario: 'idle', servers: ['hubbub'], metric: 'rssPostgresMiB', op: '<=', full: 150, quick: 200, target: 'npm start idle RSS ≤ 150 MB with PostgreSQL and Redis' },

  // soak (bench --soak, load-tests/soak.ts): no leak, no gauge drift.
  { id: 'soak.rssFloorSlopeMiBPerMin', scenario: 'soak', servers: ['hubbub'], metric: 'rssFloorSlopeMiBPerMin', op: '<=', full: 1, quick: 50, target: 'soak: hub RSS slope over the last half near zero (per-minute floor ≤ 1 MiB/min)' },
  { id: 'soak.finalGauge', scenario: 'soak', servers: ['hubbub'], metric: 'finalGauge', op: '<=', full: 0, quick: 0, target: 'soak: hubbub_ws_connections reads 0 once every socket is closed (no gauge drift)' },
];

export interface ScenarioFigures {
  name: string;
  kind: ServerKind;
  server: string;
  figures: Record<string, number | string | null>;
  counters: Record<string, number>;
}

export interface Miss {
  id: string;
  scenario: string;
  server: string;
  value: number;
  op: Op;
  bound: number;
  target: string;
}

/** Parses `--threshold ID=VALUE` options into overrides, refusing ids the table does not have. */
export function parseOverrides(list: string[], table: Threshold[] = THRESHOLDS): Map<string, number> {
  const out = new Map<string, number>();
  for (const kv of list) {
    const at = kv.lastIndexOf('=');
    const id = kv.slice(0, at);
    const v = Number(kv.slice(at + 1));
    if (at < 1 || !Number.isFinite(v)) throw new Error(`--threshold ${kv}: expected ID=NUMBER`);
    if (!table.some((t) => t.id === id)) throw new Error(`--threshold ${id}: no such threshold (one of ${table.map((t) => t.id).join(', ')})`);
    out.set(id, v);
  }
  return out;
}

const value = (s: ScenarioFigures, metric: string): number => {
  const v = s.figures[metric] ?? s.counters[metric];
  return typeof v === 'number' ? v : NaN;
};

const pass = (v: number, op: Op, bound: number) => (op === '<=' ? v <= bound : op === '>=' ? v >= bound : v === bound);

/** The bound a threshold has in this run (override, relative, quick or full). */
export function boundOf(t: Threshold, mode: 'quick' | 'full', s: ScenarioFigures, all: ScenarioFigures[], overrides: Map<string, number>): number {
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
 * Checks every scenario against the table. A figure that is missing (NaN) misses its
 * threshold. A scenario that misses `generator.eldP99` is returned as invalid (the report
 * then shows none of its latencies as the server's).
 */
export function evaluate(all: ScenarioFigures[], mode: 'quick' | 'full', overrides = new Map<string, number>(), table: Threshold[] = THRESHOLDS): { misses: Miss[]; invalid: Set<ScenarioFigures> } {
  const misses: Miss[] = [];
  const invalid = new Set<ScenarioFigures>();
  for (const s of all) {
    for (const t of table) {
      if (t.scenario !== '*' && t.scenario !== s.name) continue;
      if (t.servers !== 'all' && !t.servers.includes(s.kind)) continue;
      const v = value(s, t.metric);
      if (t.scenario === '*' && Number.isNaN(v)) continue; // a scenario without a generator (store path)
      const bound = boundOf(t, mode, s, all, overrides);
      if (pass(v, t.op, bound)) continue;
      if (t.id === 'generator.eldP99') invalid.add(s);
      misses.push({ id: t.id, scenario: s.name, server: s.server, value: v, op: t.op, bound, target: t.target });
    }
  }
  return { misses, invalid };
}
