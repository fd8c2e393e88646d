/**
 * The bench's one report: results/<stamp>.json, <stamp>.md (and latest.md) with its SVG charts, all driven by the
 * table. It lists the thresholds missed, grades every target (a threshold's full-run bound) whatever the mode, puts
 * each scenario's declared figures side by side over the servers it ran on and beside its committed baseline
 * (baselines/<scenario>.json), and the generator's own cost beside the servers'.
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
  peakRssMiB?: Record<string, number>;
  hists?: Record<string, HistSummary>;
  /** The generator's processes, CPU and event-loop delay, and its CPU per unit of work. */
  generator?: GenResult['generator'] & { unit?: string; perUnitMs?: number | null };
  tables?: { title: string; head: string[]; rows: (string | number)[][] }[];
  /** Points charted by the report: chart name → rows ({ series, x, y } or, for facets, more fields). */
  points?: Record<string, Record<string, string | number>[]>;
  serverLogs?: string[];
  generatorLogs?: string[];
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
  /** Thresholds missed in this run's mode (they fail it); every target against its full-run bound. */
  misses: Miss[];
  targets: (Miss & { met: boolean })[];
  durationS?: number;
  charts?: Record<string, string>;
  profile?: { file: string } & ProfileSummary;
  /** With --pg-stats: each hub scenario's top PostgreSQL statements. */
  pgStatements?: Record<string, PgStatement[]>;
}
/** Each scenario's key figures: name → label with its unit; a label ending in ↓ is better lower. */
export type FigureSpecs = Record<string, Record<string, string>>;
/** A chart of the points scenarios attach: title, axes, and whether each axis is logarithmic. */
export type ChartSpecs = Record<string, { title: string; x: string; y: string; logY?: boolean; facet?: true }>;

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
const section = (title: string, lines: string[], ...before: string[]) => (lines.length ? [`## ${title}`, '', ...before, ...lines] : []);
const KINDS: ServerKind[] = ['hubbub', 'uws', 'ws', 'socketio', 'floor'];

/** Every scenario run on more than one server: its figures per server, and how many times better Hubbub is. */
function sideBySide(r: BenchResult, specs: FigureSpecs): string[] {
  return [...new Set(r.scenarios.map((s) => s.name))].flatMap((name) => {
    const runs = KINDS.map((k) => r.scenarios.find((s) => s.name === name && s.kind === k && !s.server.includes('Cassandra')));
    const cols = runs.filter((s): s is ScenarioResult => !!s);
    if (cols.length < 2 || cols[0]!.kind !== 'hubbub') return [];
    const rows = Object.entries(specs[name] ?? {}).map(([k, label]) => {
      const v = cols.map((s) => fig(s, k));
      const ratio = (x: number) => (label.endsWith('↓') ? x / v[0]! : v[0]! / x);
      return [label, ...v, ...v.slice(1).map((x) => (Number.isFinite(ratio(x)) ? `${fmt(ratio(x))}×` : '–'))];
    });
    const head = ['figure', ...cols.map((s) => s.server), ...cols.slice(1).map((s) => `Hubbub vs ${s.server}`)];
    return [`## Side by side: ${name} (same workload, same run, same generator)`, '', ...table(head, rows)];
  });
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
function againstBaselines(r: BenchResult, specs: FigureSpecs): unknown[][] {
  return r.scenarios.flatMap((s) => {
    if (!existsSync(baselineFile(s.name))) return [];
    const b = JSON.parse(readFileSync(baselineFile(s.name), 'utf8')) as Baseline;
    const base = b.results.find((x) => x.server === s.server && x.kind === s.kind);
    return Object.keys(specs[s.name] ?? {})
      .map((k) => [k, fig(s, k), num(base?.figures[k])] as const)
      .filter(([, , then]) => Number.isFinite(then))
      .map(([k, now, then]) => [s.server, s.name, `${b.mode} ${b.startedAt.slice(0, 16)}`, k, now, then, `${fmt(now / then)}×`]);
  });
}

/** One chart per entry of `specs` that some scenario attached points to. */
function charts(r: BenchResult, specs: ChartSpecs): Record<string, vegaLite.TopLevelSpec> {
  const out: Record<string, vegaLite.TopLevelSpec> = {};
  for (const [name, c] of Object.entries(specs)) {
    const values = r.scenarios.flatMap((s) => (s.points?.[name] ?? []).map((p) => ({ series: s.server, ...p })));
    if (!values.length) continue;
    const legend = { labelLimit: 420, orient: 'bottom', columns: 1 } as const;
    const encoding = {
      x: { field: 'x', type: 'quantitative', title: c.x },
      y: { field: 'y', type: 'quantitative', title: c.facet ? null : c.y, ...(c.logY ? { scale: { type: 'log' } } : {}) },
      color: { field: 'series', type: 'nominal', title: null, legend },
    } as const;
    const spec = { width: c.facet ? 720 : 560, height: c.facet ? 140 : 320, mark: { type: 'line', point: !c.facet }, encoding };
    const facet = { facet: { row: { field: 'facet', type: 'nominal', title: null } }, resolve: { scale: { y: 'independent' } }, spec };
    const head = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', background: 'white', title: c.title, data: { values } };
    out[name] = { ...head, ...(c.facet ? facet : spec) } as vegaLite.TopLevelSpec;
  }
  return out;
}

function markdown(r: BenchResult, specs: FigureSpecs): string {
  const over = Object.entries(r.overrides).map(([k, v]) => `${k}=${v}`);
  const bounds = `bounds of a ${r.mode} run${over.length ? `; overridden: ${over.join(', ')}` : ''}`;
  const met = r.targets.filter((t) => t.met).length;
  const generator = r.scenarios
    .filter((s) => s.generator)
    .map(({ server, name, generator: g, figures, invalid }) => [
      ...[server, name, g!.processes, `${fmt(g!.windowCpuS)} / ${fmt(g!.totalCpuS)}`, `${fmt(g!.eldP99Ms)} / ${fmt(g!.eldMaxMs)}`],
      ...[
        g!.unit ? `${fmt(g!.perUnitMs, 3)} ms per ${g!.unit}` : '–',
        figures.serverCpuMsPer1k,
        invalid ? `**invalid**: ${invalid}` : 'yes',
      ],
    ]);
  const scenarios = r.scenarios.map((s) => {
    const missed = r.misses.filter((m) => m.scenario === s.name && m.server === s.server).map((m) => `\`${m.id}\``);
    const figs = Object.entries(s.figures).filter(([, v]) => v !== null);
    return [
      ...[s.server, s.name, missed.length ? `**missed**: ${missed.join(', ')}` : 'pass'],
      figs.map(([k, v]) => `${k} ${s.invalid && LATENCY.test(k) ? 'invalid' : fmt(v)}`).join(', '),
      Object.entries(s.cpuS ?? {})
        .map(([k, v]) => `${k} ${fmt(v, 1)}`)
        .join(', '),
    ];
  });
  const p = r.profile;
  return [
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
    r.misses.length ? `**${r.misses.length} missed** (${bounds}):` : `Every threshold that applied was met (${bounds}).`,
    '',
    ...(r.misses.length
      ? table(
          ['threshold', 'server', 'value', 'bound', 'target'],
          r.misses.map((m) => [`\`${m.id}\``, m.server, m.value, `${m.op} ${fmt(m.bound)}`, m.target]),
        )
      : []),
    ...section(
      `Targets (graded against the full-run bounds; ${met} of ${r.targets.length} met${r.mode === 'quick' ? ', at quick sizes, which do not fail a quick run' : ''})`,
      r.targets.length
        ? table(
            ['target', 'server', 'this run', 'bound', 'met'],
            r.targets.map((t) => [t.target, t.server, t.value, `${t.op} ${fmt(t.bound)}`, t.met ? 'yes' : '**no**']),
          )
        : [],
    ),
    ...sideBySide(r, specs),
    ...section(
      'The generator measured too',
      generator.length
        ? table(
            [
              'server',
              'scenario',
              'processes',
              'CPU s (window / whole)',
              'event loop p99 / max ms',
              'CPU per unit',
              'server CPU ms per 1,000 deliveries',
              'valid',
            ],
            generator,
          )
        : [],
      'A scenario whose worst generator process had an event-loop p99 past `generator.eldP99` is invalid: its latencies measured the generator.',
      '',
    ),
    ...section(
      'Against the baselines (load-tests/baselines/)',
      ((rows) => (rows.length ? table(['server', 'scenario', 'baseline', 'figure', 'this run', 'baseline', 'this / baseline'], rows) : []))(
        againstBaselines(r, specs),
      ),
    ),
    ...section('Scenarios', table(['server', 'scenario', 'thresholds', 'figures', 'CPU s over the scenario'], scenarios)),
    ...r.scenarios.flatMap((s) => (s.tables ?? []).flatMap((t) => [`### ${t.title}`, '', ...table(t.head, t.rows)])),
    ...(p
      ? [
          `## Where hub-a's CPU went (--profile; busy ${p.totalMs} ms; \`${p.file}\`)`,
          '',
          ...table(
            ['share %', 'area'],
            p.byArea.slice(0, 14).map((a) => [a.pct, a.area]),
          ),
          ...table(
            ['share %', 'function (self time)', 'where'],
            p.byFunction.slice(0, 15).map((f) => [f.pct, `\`${f.fn}\``, f.where]),
          ),
        ]
      : []),
    ...section(
      'Notes',
      r.notes.map((n) => `- ${n}`),
    ),
  ].join('\n');
}

/** Writes the JSON, the Markdown (also as latest.md) and the charts; returns the Markdown. */
export async function writeReport(r: BenchResult, dir: string, stamp: string, specs: FigureSpecs, chartSpecs: ChartSpecs) {
  mkdirSync(dir, { recursive: true });
  r.charts = {};
  for (const [name, spec] of Object.entries(charts(r, chartSpecs))) {
    try {
      const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
      writeFileSync(path.join(dir, `${stamp}-${name}.svg`), await view.toSVG());
      view.finalize();
      r.charts[name] = `${stamp}-${name}.svg`;
    } catch (err) {
      r.notes.push(`chart ${name} not rendered: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const md = markdown(r, specs) + '\n';
  writeFileSync(path.join(dir, `${stamp}.json`), JSON.stringify(r, null, 2) + '\n');
  for (const f of [`${stamp}.md`, 'latest.md']) writeFileSync(path.join(dir, f), md);
  return md;
}

/** One small baseline per scenario run: its servers' numeric figures, the sizes it read and the machine. */
export function saveBaselines(r: BenchResult, sizesOf: (scenario: string) => BenchResult['sizes']) {
  for (const name of new Set(r.scenarios.map((s) => s.name))) {
    const results = r.scenarios
      .filter((s) => s.name === name)
      .map(({ server, kind, figures, invalid }) => {
        const keep = ([k, v]: [string, unknown]) => Number.isFinite(num(v)) && !(invalid && LATENCY.test(k));
        return { server, kind, figures: Object.fromEntries(Object.entries(figures).filter(keep)) as Record<string, number> };
      });
    const b: Baseline = { scenario: name, mode: r.mode, startedAt: r.startedAt, machine: r.machine, sizes: sizesOf(name), results };
    mkdirSync(path.dirname(baselineFile(name)), { recursive: true });
    writeFileSync(baselineFile(name), JSON.stringify(b, null, 1) + '\n');
  }
}
