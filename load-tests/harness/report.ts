/**
 * The bench's one report: results/<stamp>.json, <stamp>.md (and latest.md) with its SVG charts. It lists the thresholds
 * missed, grades every target (a threshold's full-run bound) whatever the mode, puts Hubbub beside the peers and every
 * figure beside the scenario's committed baseline (baselines/<scenario>.json), and the generator's own cost beside the
 * servers'. Scenarios may attach tables of their own (conn-scale steps, the soak's replicas, frame validation).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import type { GenResult, HistSummary } from '../gen/runner.ts';
import type { ServerKind } from '../gen/protocol.ts';
import type { PgStatement, ProfileSummary } from './diagnostics.ts';
import { repoRoot, round } from './procs.ts';

export interface ScenarioResult {
  /** The scenario's name in the table. */
  name: string;
  server: string;
  kind: ServerKind;
  /** Why its latencies are not the server's (the generator's event loop lagged). */
  invalid?: string;
  durationS: number;
  figures: Record<string, number | string | null>;
  counters: Record<string, number>;
  /** CPU seconds per watched group over the scenario, and inside the measured window. */
  cpuS?: Record<string, number>;
  windowCpuS?: Record<string, number>;
  windowS?: number;
  peakRssMiB?: Record<string, number>;
  hists?: Record<string, HistSummary>;
  distributions?: Record<string, { p: number; ms: number }[]>;
  /** The generator's processes, CPU and event-loop delay, and its CPU per unit of work. */
  generator?: GenResult['generator'] & Record<string, number | null>;
  /** Sockets resumed per 100 ms (connect storm). */
  timeline?: number[];
  tables?: { title: string; head: string[]; rows: (string | number)[][] }[];
  /** Points over time, charted (the soak). */
  series?: Record<string, string | number>[];
  serverLogs?: string[];
  generatorLogs?: string[];
  pgStatements?: PgStatement[];
}

export interface Miss {
  id: string;
  scenario: string;
  server: string;
  value: number;
  op: string;
  bound: number;
  target: string;
}

export interface BenchResult {
  startedAt: string;
  mode: 'quick' | 'full';
  sizes: Record<string, number | string>;
  overrides: Record<string, number>;
  machine: Record<string, string | number>;
  scenarios: ScenarioResult[];
  notes: string[];
  ok: boolean;
  /** Thresholds missed in this run's mode (they fail it). */
  misses: Miss[];
  /** Every target against its full-run bound: what the run says about the targets, in either mode. */
  targets: (Miss & { met: boolean })[];
  durationS?: number;
  charts?: Record<string, string>;
  profile?: { file: string } & ProfileSummary;
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : NaN);
const fmt = (v: unknown, digits = 2) => {
  const n = num(v);
  if (!Number.isFinite(n)) return typeof v === 'string' ? v : '–';
  return Math.abs(n) >= 1000 ? Math.round(n).toLocaleString('en-US') : String(round(n, digits));
};
/** Figures that are latencies, which an invalid scenario does not report as the server's. */
const LATENCY = /^latency|P50|P95|P99|P999/;
const fig = (s: ScenarioResult | undefined, k: string) => (s?.invalid && LATENCY.test(k) ? NaN : num(s?.figures[k] ?? s?.counters[k]));
const table = (head: string[], rows: unknown[][]) => [
  `| ${head.join(' | ')} |`,
  `|${head.map(() => '---|').join('')}`,
  ...rows.map((r) => `| ${r.map((x) => fmt(x)).join(' | ')} |`),
  '',
];

/** Hubbub first: the ratio columns compare it with each of the rest. */
const COLUMNS: { kind: ServerKind; short: string }[] = [
  { kind: 'hubbub', short: 'Hubbub' },
  { kind: 'uws', short: 'bare uWS' },
  { kind: 'ws', short: 'plain ws' },
  { kind: 'socketio', short: 'Socket.IO' },
  { kind: 'floor', short: 'durable floor' },
];
const SIDE_BY_SIDE: [string, string, string, boolean][] = [
  ['fanout', 'deliveriesPerServerCpuS', 'fanout: deliveries per server CPU-second', false],
  ['fanout', 'deliveredPerS', 'fanout: deliveries/s achieved', false],
  ['fanout', 'serverCpuPct', 'fanout: server CPU % (of one core) in the send window', true],
  ['fanout', 'serverCpuMsPer1k', 'fanout: server CPU ms per 1,000 deliveries', true],
  ['fanout', 'latencyP50', 'fanout: latency p50 ms', true],
  ['fanout', 'latencyP99', 'fanout: latency p99 ms', true],
  ['fanout', 'latencyP999', 'fanout: latency p99.9 ms', true],
  ['fanout', 'faults', 'fanout: lost + out of order + duplicates', true],
  ['connect', 'connections', 'connect: sockets held', false],
  ['connect', 'rssPerConnKiB', 'connect: RSS per connection KiB', true],
  ['connect', 'serverCpuMsPerConn', 'connect: server CPU ms per connection', true],
  ['connect', 'connectP50', 'connect: time to resumed p50 ms', true],
  ['connect', 'connectP99', 'connect: time to resumed p99 ms', true],
];

function sideBySide(r: BenchResult): string[] {
  const find = (kind: ServerKind, name: string) =>
    r.scenarios.find((s) => s.kind === kind && s.name === name && s.server !== 'Hubbub (Cassandra store)');
  if (!r.scenarios.some((s) => s.kind !== 'hubbub')) return [];
  const rows = SIDE_BY_SIDE.map(([name, key, label, lowerIsBetter]) => {
    const v = COLUMNS.map((c) =>
      key === 'faults'
        ? ['fanout_lost', 'fanout_out_of_order', 'fanout_duplicates'].reduce((a, k) => a + fig(find(c.kind, name), k), 0)
        : fig(find(c.kind, name), key),
    );
    return [
      label,
      ...v,
      ...v
        .slice(1)
        .map((x) => (lowerIsBetter ? x / v[0]! : v[0]! / x))
        .map((x) => (Number.isFinite(x) ? `${fmt(x)}×` : '–')),
    ];
  });
  const head = ['figure', ...COLUMNS.map((c) => c.short), ...COLUMNS.slice(1).map((c) => `Hubbub vs ${c.short}`)];
  return [
    '## Side by side (same workload, same run, same generator)',
    '',
    ...table(head, rows),
    'Ratios are how many times better Hubbub is, for every row.',
    '',
  ];
}

/** The generator's CPU per unit of work, by the unit its scenario counts. */
const UNITS: [string, string, number][] = [
  ['msPer1kDeliveries', 'ms per 1,000 deliveries', 2],
  ['msPerSocket', 'ms per socket', 3],
  ['msPerCall', 'ms per call', 3],
];
/** The generator's own cost and health, beside the servers'. */
function generatorCost(r: BenchResult): string[] {
  const rows = r.scenarios
    .filter((s) => s.generator)
    .map((s) => {
      const g = s.generator!;
      const [key, what, digits] = UNITS.find(([k]) => g[k] != null) ?? [];
      const unit = key ? `${fmt(g[key], digits)} ${what}` : '–';
      return [
        s.server,
        s.name,
        g.processes,
        `${fmt(g.windowCpuS)} / ${fmt(g.totalCpuS)}`,
        `${fmt(g.eldP99Ms)} / ${fmt(g.eldMaxMs)}`,
        unit,
        s.figures.serverCpuMsPer1k,
        s.invalid ? `**invalid**: ${s.invalid}` : 'yes',
      ];
    });
  if (!rows.length) return [];
  const head = [
    'server',
    'scenario',
    'processes',
    'CPU s (window / whole)',
    'event loop p99 / max ms',
    'CPU per unit',
    'server CPU ms per 1,000 deliveries',
    'valid',
  ];
  return [
    '## The generator measured too',
    '',
    'A scenario whose worst generator process had an event-loop p99 past `generator.eldP99` is invalid: its latencies measured the generator.',
    '',
    ...table(head, rows),
  ];
}

const baselineFile = (scenario: string) => path.join(repoRoot, 'load-tests', 'baselines', `${scenario}.json`);
interface Baseline {
  scenario: string;
  mode: 'quick' | 'full';
  startedAt: string;
  machine: BenchResult['machine'];
  sizes: BenchResult['sizes'];
  results: { server: string; kind: ServerKind; figures: Record<string, number> }[];
}

/** This run's key figures beside each scenario's committed baseline. */
function againstBaselines(r: BenchResult, keyFigures: Record<string, string[]>): string[] {
  const rows: unknown[][] = [];
  for (const name of new Set(r.scenarios.map((s) => s.name))) {
    if (!existsSync(baselineFile(name))) continue;
    const b = JSON.parse(readFileSync(baselineFile(name), 'utf8')) as Baseline;
    for (const s of r.scenarios.filter((x) => x.name === name)) {
      const base = b.results.find((x) => x.server === s.server && x.kind === s.kind);
      for (const k of keyFigures[name] ?? []) {
        const [now, then] = [fig(s, k), num(base?.figures[k])];
        if (Number.isFinite(then))
          rows.push([
            s.server,
            name,
            `${b.mode} ${b.startedAt.slice(0, 16)}`,
            k,
            now,
            then,
            Number.isFinite(now / then) ? `${fmt(now / then)}×` : '–',
          ]);
      }
    }
  }
  return rows.length
    ? [
        '## Against the baselines (load-tests/baselines/)',
        '',
        ...table(['server', 'scenario', 'baseline', 'figure', 'this run', 'baseline', 'this / baseline'], rows),
      ]
    : [];
}

type Row = Record<string, string | number>;
const legend = { labelLimit: 420, orient: 'bottom', columns: 1 } as const;
const line = (title: string, rows: Row[], x: [string, string], y: [string, string], extra: object = {}): vegaLite.TopLevelSpec => ({
  $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
  ...{ width: 560, height: 320, background: 'white', title, data: { values: rows }, mark: { type: 'line', point: true } },
  encoding: {
    x: { field: x[0], type: 'quantitative', title: x[1] },
    y: { field: y[0], type: 'quantitative', title: y[1] },
    color: { field: 'server', type: 'nominal', title: 'server', legend },
  },
  ...extra,
});

/** The charts that have data: latency distributions, RSS against open sockets, the connect storm, the soak. */
function charts(r: BenchResult): Record<string, vegaLite.TopLevelSpec> {
  const label = (s: ScenarioResult) =>
    (COLUMNS.find((c) => c.kind === s.kind)?.short ?? s.server) + (s.invalid ? ` (invalid: ${s.invalid})` : '');
  const of = (name: string) => r.scenarios.filter((s) => s.name === name);
  const latency = of('fanout').flatMap((s) =>
    (s.distributions?.fanout_latency ?? []).map((d) => ({
      server: label(s),
      nines: d.p >= 100 ? 5 : -Math.log10(1 - d.p / 100),
      ms: Math.max(d.ms, 0.001),
    })),
  );
  const rss = of('connect').flatMap((s) => [
    { server: `${label(s)} (connect storm)`, sockets: 0, rssMiB: num(s.figures.rssBeforeMiB) },
    { server: `${label(s)} (connect storm)`, sockets: num(s.figures.connections), rssMiB: num(s.figures.rssAtPeakMiB) },
  ]);
  for (const s of of('connscale'))
    rss.push(
      ...(s.tables?.[0]?.rows ?? []).map((x) => ({ server: 'Hubbub, 1 replica (connscale)', sockets: num(x[0]), rssMiB: num(x[1]) })),
    );
  const connect = of('connect').flatMap((s) => {
    let total = 0;
    return (s.timeline ?? []).map((n, i) => ({ server: label(s), s: round((i + 1) / 10, 1), resumed: (total += n) }));
  });
  const soak = of('soak').flatMap((s) => s.series ?? []);
  const out: Record<string, vegaLite.TopLevelSpec> = {};
  const ticks = { values: [0, 1, 2, 3, 4, 5], labelExpr: "['p0','p90','p99','p99.9','p99.99','max'][datum.value]" };
  if (latency.length)
    out.latency = line(
      `Fanout send→deliver latency, ${r.sizes.fanoutRate} sends/s into rooms of ${r.sizes.roomSize} (${r.mode} run)`,
      latency,
      ['nines', 'percentile'],
      ['ms', 'send→deliver latency (ms, log)'],
      {
        encoding: {
          x: { field: 'nines', type: 'quantitative', title: 'percentile', scale: { domain: [0, 5] }, axis: ticks },
          y: { field: 'ms', type: 'quantitative', title: 'send→deliver latency (ms, log)', scale: { type: 'log' } },
          color: { field: 'server', type: 'nominal', legend },
        },
      },
    );
  if (rss.length) out.rss = line('Server RSS against open sockets', rss, ['sockets', 'open sockets'], ['rssMiB', 'server RSS (MiB)']);
  if (connect.length)
    out.connect = line(
      `Connect storm: sockets resumed over time (${r.sizes.connectN} sockets)`,
      connect,
      ['s', 'seconds since the storm began'],
      ['resumed', 'sockets resumed'],
    );
  if (soak.length) {
    const spec = {
      width: 720,
      height: 140,
      mark: { type: 'line' },
      encoding: {
        x: { field: 't', type: 'quantitative', title: 'minutes' },
        y: { field: 'value', type: 'quantitative', title: null },
        color: { field: 'replica', type: 'nominal' },
      },
    };
    out.soak = {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: 'Soak: each replica over time',
      data: { values: soak },
      facet: { row: { field: 'metric', type: 'nominal', title: null } },
      resolve: { scale: { y: 'independent' } },
      spec,
    } as vegaLite.TopLevelSpec;
  }
  return out;
}

function markdown(r: BenchResult, keyFigures: Record<string, string[]>): string {
  const overridden = Object.entries(r.overrides)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  const lines = [
    `# Hubbub bench: ${r.mode} run, ${r.startedAt}`,
    '',
    `Machine: ${r.machine.cpus} cores (${r.machine.cpuModel}), ${r.machine.memGiB} GiB, Node ${r.machine.node}, shared by the servers, PostgreSQL, Redis and the generator. Run took ${r.durationS ?? '?'} s. Overall: **${r.ok ? 'PASS' : 'FAIL'}**.`,
    '',
    `Sizes: ${Object.entries(r.sizes)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}`,
    '',
    ...Object.entries(r.charts ?? {}).flatMap(([k, f]) => [`![${k}](${f})`, '']),
    '## Thresholds',
    '',
    r.misses.length
      ? `**${r.misses.length} missed** (bounds of a ${r.mode} run${overridden ? `; overridden: ${overridden}` : ''}):`
      : `Every threshold that applied was met (bounds of a ${r.mode} run${overridden ? `; overridden: ${overridden}` : ''}).`,
    '',
    ...(r.misses.length
      ? table(
          ['threshold', 'server', 'value', 'bound', 'target'],
          r.misses.map((m) => [`\`${m.id}\``, m.server, m.value, `${m.op} ${fmt(m.bound)}`, m.target]),
        )
      : []),
    ...(r.targets.length
      ? [
          `## Targets (graded against the full-run bounds; ${r.targets.filter((t) => t.met).length} of ${r.targets.length} met${r.mode === 'quick' ? ', at quick sizes, which do not fail a quick run' : ''})`,
          '',
          ...table(
            ['target', 'server', 'this run', 'bound', 'met'],
            r.targets.map((t) => [t.target, t.server, t.value, `${t.op} ${fmt(t.bound)}`, t.met ? 'yes' : '**no**']),
          ),
        ]
      : []),
    ...sideBySide(r),
    ...generatorCost(r),
    ...againstBaselines(r, keyFigures),
    '## Scenarios',
    '',
    ...table(
      ['server', 'scenario', 'thresholds', 'figures', 'CPU s over the scenario'],
      r.scenarios.map((s) => {
        const missed = r.misses.filter((m) => m.scenario === s.name && m.server === s.server).map((m) => `\`${m.id}\``);
        const figs = Object.entries(s.figures)
          .filter(([, v]) => v !== null)
          .map(([k, v]) => `${k} ${s.invalid && LATENCY.test(k) ? 'invalid' : fmt(v)}`);
        return [
          s.server,
          s.name,
          missed.length ? `**missed**: ${missed.join(', ')}` : 'pass',
          figs.join(', '),
          Object.entries(s.cpuS ?? {})
            .map(([k, v]) => `${k} ${fmt(v, 1)}`)
            .join(', '),
        ];
      }),
    ),
  ];
  for (const s of r.scenarios) for (const t of s.tables ?? []) lines.push(`### ${t.title}`, '', ...table(t.head, t.rows));
  const stats = r.scenarios.flatMap((s) =>
    (s.pgStatements ?? []).map((q) => [
      s.name,
      q.calls,
      q.meanMs,
      q.totalMs,
      q.rowsPerCall,
      q.buffersPerCall,
      `\`${q.query.slice(0, 110).replaceAll('|', '\\|')}\``,
    ]),
  );
  if (stats.length)
    lines.push(
      '## PostgreSQL statements by time (--pg-stats)',
      '',
      ...table(['scenario', 'calls', 'mean ms', 'total ms', 'rows per call', 'buffers per call', 'statement'], stats),
    );
  if (r.profile) {
    lines.push(`## Where hub-a's CPU went (--profile; busy ${r.profile.totalMs} ms; \`${r.profile.file}\`)`, '');
    lines.push(
      ...table(
        ['share %', 'area'],
        r.profile.byArea.slice(0, 14).map((a) => [a.pct, a.area]),
      ),
      ...table(
        ['share %', 'function (self time)', 'where'],
        r.profile.byFunction.slice(0, 15).map((f) => [f.pct, `\`${f.fn}\``, f.where]),
      ),
    );
  }
  if (r.notes.length) lines.push('## Notes', '', ...r.notes.map((n) => `- ${n}`), '');
  return lines.join('\n');
}

/** Writes the JSON, the Markdown (also as latest.md) and the charts; returns the Markdown. */
export async function writeReport(r: BenchResult, dir: string, stamp: string, keyFigures: Record<string, string[]>) {
  mkdirSync(dir, { recursive: true });
  r.charts = {};
  for (const [name, spec] of Object.entries(charts(r))) {
    try {
      const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
      writeFileSync(path.join(dir, `${stamp}-${name}.svg`), await view.toSVG());
      view.finalize();
      r.charts[name] = `${stamp}-${name}.svg`;
    } catch (err) {
      r.notes.push(`chart ${name} not rendered: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const md = markdown(r, keyFigures) + '\n';
  writeFileSync(path.join(dir, `${stamp}.json`), JSON.stringify(r, null, 2) + '\n');
  writeFileSync(path.join(dir, `${stamp}.md`), md);
  writeFileSync(path.join(dir, 'latest.md'), md);
  return md;
}

/** One small baseline per scenario run: its servers' numeric figures, the sizes it read and the machine. */
export function saveBaselines(r: BenchResult, sizesOf: (scenario: string) => BenchResult['sizes']) {
  for (const name of new Set(r.scenarios.map((s) => s.name))) {
    const results = r.scenarios
      .filter((s) => s.name === name)
      .map((s) => ({
        server: s.server,
        kind: s.kind,
        figures: Object.fromEntries(
          Object.entries(s.figures).filter(
            (e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1]) && !(s.invalid && LATENCY.test(e[0])),
          ),
        ),
      }));
    const b: Baseline = { scenario: name, mode: r.mode, startedAt: r.startedAt, machine: r.machine, sizes: sizesOf(name), results };
    mkdirSync(path.dirname(baselineFile(name)), { recursive: true });
    writeFileSync(baselineFile(name), JSON.stringify(b, null, 1) + '\n');
  }
}
