/**
 * The bench report: thresholds (harness/thresholds.ts) checked, the issue's targets graded,
 * Hubbub side by side with the peers, every figure next to the previous run's
 * (harness/previous.ts), the generator's own cost beside the servers', SVG charts
 * (harness/charts.ts) linked from the Markdown. Writes results/<stamp>.json, <stamp>.md,
 * <stamp>-*.svg and latest.md.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ConnScaleResult } from '../conn-scale.ts';
import type { GenResult } from '../gen/runner.ts';
import type { HistSummary } from '../gen/stats.ts';
import { connectSpec, latencySpec, rssSpec, writeCharts } from './charts.ts';
import type { PgStatement } from './pg-stats.ts';
import { PREVIOUS, PREVIOUS_CONN_SCALE, PREVIOUS_RUN } from './previous.ts';
import type { ProfileSummary } from './profile-summary.ts';
import { round } from './procs.ts';
import type { ServerKind } from './servers.ts';
import { evaluate, THRESHOLDS, type Miss } from './thresholds.ts';

export interface ScenarioResult {
  name: string;
  server: string;
  kind: ServerKind;
  /** No threshold missed (set by finishReport). */
  ok: boolean;
  /** Why the scenario's latencies are not the server's (generator event loop too slow). */
  invalid?: string;
  durationS: number;
  /** CPU seconds per watched group (and `generator`) over the whole scenario. */
  cpuS: Record<string, number>;
  /** CPU seconds per group inside the measured window (fanout: the send window + 500 ms). */
  windowCpuS: Record<string, number> | null;
  windowS: number | null;
  peakRssMiB: Record<string, number>;
  counters: Record<string, number>;
  hists: Record<string, HistSummary>;
  distributions: Record<string, { p: number; ms: number }[]>;
  figures: Record<string, number | string | null>;
  /** The generator's processes, CPU and event-loop delay, and its CPU per unit of work. */
  generator: (GenResult['generator'] & { msPer1kDeliveries?: number | null; msPerSocket?: number | null; msPerCall?: number | null }) | null;
  /** Connect storm: sockets resumed per 100 ms. */
  timeline?: number[];
  serverLogs?: string[];
  generatorLogs?: string[];
  /** bench --pg-stats: PostgreSQL's busiest statements during the run. */
  pgStatements?: PgStatement[];
}

export interface BenchResult {
  startedAt: string;
  mode: 'quick' | 'full';
  sizes: Record<string, number | string>;
  overrides: Record<string, number>;
  machine: Record<string, string | number>;
  generator: string;
  scenarios: ScenarioResult[];
  connScale: ConnScaleResult | null;
  notes: string[];
  ok: boolean;
  misses: Miss[];
  durationS?: number;
  targets?: TargetRow[];
  charts?: Record<string, string>;
  /** Summary of hub-a's --cpu-prof profile (bench --profile). */
  profile?: { file: string; scenarios: string[] } & ProfileSummary;
}

interface TargetRow {
  target: string;
  figure: string;
  met: boolean | null;
  note?: string;
}

/** The persist workload against bare uWS, storing nothing: the most acked sends/s the generator drives here. */
export const CEILING_SCENARIO = 'load-generator ceiling';

const find = (r: BenchResult, kind: ServerKind, name: string) => r.scenarios.find((s) => s.kind === kind && s.name === name);
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : NaN);
const fmt = (v: unknown, digits = 2) => {
  const n = num(v);
  if (!Number.isFinite(n)) return '–';
  return Math.abs(n) >= 1000 ? Math.round(n).toLocaleString('en-US') : String(round(n, digits));
};
const count = (s: ScenarioResult | undefined, k: string) => num(s?.counters[k] ?? 0);
const dpc = (s?: ScenarioResult) => num(s?.figures.deliveriesPerServerCpuS);
/** Figures that are latencies (or times to resume), which an invalid scenario does not report. */
const LATENCY_FIGURE = /^latency|P50$|P95$|P99$|P999$/;
/** A latency figure, or `invalid` where the generator's event loop was too slow to measure it. */
const lat = (s: ScenarioResult | undefined, k: string) => (s?.invalid && LATENCY_FIGURE.test(k) ? NaN : num(s?.figures[k]));

function uwsCeiling(r: BenchResult): string | null {
  const uws = find(r, 'uws', 'fanout');
  const ws = find(r, 'ws', 'fanout');
  if (!uws || !ws) return null;
  return `bare uWS reaches ${fmt(dpc(uws) / dpc(ws))}× plain ws (${fmt(dpc(uws))} vs ${fmt(dpc(ws))})`;
}

/** The issue's targets, each with this run's figure and whether it was met. */
function targetRows(r: BenchResult): TargetRow[] {
  const rows: TargetRow[] = [];
  const hub = find(r, 'hubbub', 'fanout');
  const ws = find(r, 'ws', 'fanout');
  const sio = find(r, 'socketio', 'fanout');
  if (hub && ws) {
    const x = dpc(hub) / dpc(ws);
    const ceiling = uwsCeiling(r);
    rows.push({ target: 'Fanout deliveries per server CPU-s ≥ 3× plain ws', figure: `${fmt(x)}× (${fmt(dpc(hub))} vs ${fmt(dpc(ws))})`, met: x >= 3, ...(ceiling ? { note: `context: ${ceiling}` } : {}) });
  }
  if (hub && sio) {
    const x = dpc(hub) / dpc(sio);
    rows.push({ target: 'Fanout deliveries per server CPU-s ≥ 8× Socket.IO + Redis adapter', figure: `${fmt(x)}× (${fmt(dpc(hub))} vs ${fmt(dpc(sio))})`, met: x >= 8 });
  }
  const floor = find(r, 'floor', 'fanout');
  const uwsFan = find(r, 'uws', 'fanout');
  if (hub && floor && uwsFan) {
    // Not a target: how much of the ratio to bare uWS durability and replication alone take.
    rows.push({
      target: 'Context: the durable floor (two uWS replicas doing only the append, the PUBLISH and native fanout)',
      figure: `deliveries per server CPU-s: floor ${fmt(dpc(floor))} = ${fmt(dpc(floor) / dpc(uwsFan))}× bare uWS; Hubbub ${fmt(dpc(hub) / dpc(floor))}× the floor; p50 / p99 floor ${fmt(lat(floor, 'latencyP50'))} / ${fmt(lat(floor, 'latencyP99'))} ms, bare uWS ${fmt(lat(uwsFan, 'latencyP50'))} / ${fmt(lat(uwsFan, 'latencyP99'))} ms`,
      met: null,
    });
  }
  const cs = r.connScale;
  if (cs) {
    const top = cs.steps.at(-1);
    const at50k = cs.steps.find((s) => s.connections >= 50_000);
    rows.push({ target: '100k authenticated sockets on one hub process', figure: `${fmt(cs.maxConnections)} reached`, met: cs.maxConnections >= 100_000, note: cs.stopReason });
    rows.push({
      target: '≤ 3 KB RSS per connection at 50k',
      figure: at50k ? `${fmt(at50k.rssPerConnKiB)} KiB at ${fmt(at50k.connections)}` : top ? `${fmt(top.rssPerConnKiB)} KiB at ${fmt(top.connections)} (50k not reached)` : '–',
      met: at50k ? at50k.rssPerConnKiB <= 3 : null,
    });
  }
  if (hub) {
    const f = hub.figures;
    const lostEtc = count(hub, 'fanout_lost') + count(hub, 'fanout_out_of_order') + count(hub, 'fanout_duplicates');
    rows.push({
      target: `Latency at ${r.sizes.fanoutRate} sends/s, rooms of ${r.sizes.roomSize}: p50 ≤ 2, p99 ≤ 10, p99.9 ≤ 25 ms`,
      figure: hub.invalid ? `invalid: ${hub.invalid}` : `p50 ${fmt(f.latencyP50)} / p99 ${fmt(f.latencyP99)} / p99.9 ${fmt(f.latencyP999)} ms, ${fmt(f.deliveredPerS)} deliveries/s`,
      met: hub.invalid ? null : num(f.latencyP50) <= 2 && num(f.latencyP99) <= 10 && num(f.latencyP999) <= 25,
    });
    rows.push({ target: 'Zero lost, duplicated or out-of-order deliveries', figure: `${lostEtc} (of ${fmt(count(hub, 'fanout_delivered'))})`, met: lostEtc === 0 });
  }
  const rc = find(r, 'hubbub', 'reconnect');
  if (rc) {
    const p99 = lat(rc, 'firstMessageP99');
    const bad = count(rc, 'reconnect_not_resumed') + count(rc, 'reconnect_gaps') + count(rc, 'reconnect_duplicates') + count(rc, 'reconnect_lost');
    rows.push({
      target: 'Reconnect storm: all resumed, no gap, p99 time to first message ≤ 1 s',
      figure: `${fmt(count(rc, 'reconnect_resumed'))} of ${fmt(rc.figures.members)} resumed, ${bad} problems, first message p50 ${fmt(lat(rc, 'firstMessageP50'))} / p99 ${fmt(p99)} ms`,
      met: rc.invalid ? null : bad === 0 && p99 <= 1000,
    });
  }
  const ceiling = find(r, 'uws', CEILING_SCENARIO);
  for (const s of r.scenarios.filter((x) => x.kind === 'hubbub' && x.name.startsWith('persist'))) {
    const v = num(s.figures.ackedPerS);
    rows.push({
      target: `≥ 10k messages/s durable: ${s.name.replace(/^persist /, '')}`,
      figure: `${fmt(v)} acked/s`,
      met: v >= 10_000,
      ...(ceiling ? { note: `context: the same workload against bare uWS storing nothing: ${fmt(num(ceiling.figures.ackedPerS))} acked/s` } : {}),
    });
  }
  for (const s of r.scenarios.filter((x) => x.name.startsWith('store path'))) {
    const v = num(s.figures.appendsPerS);
    rows.push({ target: `≥ 10k messages/s durable: ${s.name} (EventWriter + store, no sockets)`, figure: `${fmt(v)} appends/s, ${fmt(s.figures.writerCpuUsPerAppend)} µs writer CPU each`, met: v >= 10_000 && count(s, 'failed') === 0 });
  }
  const fl = find(r, 'hubbub', 'fanout+login');
  if (fl) {
    const lp = lat(fl, 'loginP99');
    rows.push({ target: `Login p99 ≤ 50 ms at ${r.sizes.loginRate}/s (during fanout)`, figure: `${fmt(lp)} ms`, met: fl.invalid ? null : lp <= 50 });
    if (hub) {
      const x = lat(fl, 'latencyP99') / lat(hub, 'latencyP99');
      rows.push({ target: 'Fanout p99 during logins ≤ 1.1× without', figure: `${fmt(x)}× (${fmt(lat(fl, 'latencyP99'))} vs ${fmt(lat(hub, 'latencyP99'))} ms)`, met: Number.isFinite(x) ? x <= 1.1 : null });
    }
  }
  const api = find(r, 'hubbub', 'api');
  if (api) rows.push({ target: "History p99 ≤ 50 ms at the api rate (the bench's own bar)", figure: `${fmt(lat(api, 'historyP99'))} ms`, met: api.invalid ? null : lat(api, 'historyP99') <= 50 });
  return rows;
}

/** The side-by-side table's servers, Hubbub first (the ratio columns compare it with each of the rest). */
const COLUMNS: { kind: ServerKind; head: string; short: string }[] = [
  { kind: 'hubbub', head: 'Hubbub (2 replicas, PostgreSQL + Redis)', short: 'Hubbub' },
  { kind: 'uws', head: 'bare uWS (1 process)', short: 'bare uWS' },
  { kind: 'ws', head: 'plain ws (1 process)', short: 'ws' },
  { kind: 'socketio', head: 'Socket.IO + Redis adapter (2 replicas)', short: 'Socket.IO' },
  { kind: 'floor', head: 'durable floor: uWS + PostgreSQL + Redis (2 replicas)', short: 'durable floor' },
];

function sideBySide(r: BenchResult): string[] {
  const lines: string[] = [];
  const fan = COLUMNS.map((c) => find(r, c.kind, 'fanout'));
  const con = COLUMNS.map((c) => find(r, c.kind, 'connect'));
  if (!fan.some(Boolean) && !con.some(Boolean)) return lines;
  const ratio = (a: unknown, b: unknown, invert = false) => {
    const x = invert ? num(b) / num(a) : num(a) / num(b);
    return Number.isFinite(x) ? `${fmt(x)}×` : '–';
  };
  const peers = COLUMNS.slice(1);
  lines.push('## Side by side (same workload, same run, same generator)', '');
  lines.push(`| figure | ${COLUMNS.map((c) => c.head).join(' | ')} | ${peers.map((c) => `Hubbub vs ${c.short}`).join(' | ')} |`);
  lines.push(`|---|${COLUMNS.map(() => '---|').join('')}${peers.map(() => '---|').join('')}`);
  const row = (label: string, get: (s: ScenarioResult) => unknown, invert = false, list = fan) => {
    const v = list.map((s) => (s ? get(s) : NaN));
    lines.push(`| ${label} | ${v.map((x) => fmt(x)).join(' | ')} | ${v.slice(1).map((x) => ratio(v[0], x, invert)).join(' | ')} |`);
  };
  row('fanout: deliveries per server CPU-second', (s) => s.figures.deliveriesPerServerCpuS);
  row('fanout: deliveries/s achieved', (s) => s.figures.deliveredPerS);
  row('fanout: server CPU % (of one core) in the send window', (s) => s.figures.serverCpuPct, true);
  row('fanout: server CPU ms per 1,000 deliveries', (s) => s.figures.serverCpuMsPer1k, true);
  row('fanout: generator CPU ms per 1,000 deliveries', (s) => s.generator?.msPer1kDeliveries, true);
  row('fanout: latency p50 ms', (s) => lat(s, 'latencyP50'), true);
  row('fanout: latency p99 ms', (s) => lat(s, 'latencyP99'), true);
  row('fanout: latency p99.9 ms', (s) => lat(s, 'latencyP999'), true);
  row('fanout: lost + out of order + duplicates', (s) => count(s, 'fanout_lost') + count(s, 'fanout_out_of_order') + count(s, 'fanout_duplicates'), true);
  row('connect: sockets held', (s) => s.figures.connections, false, con);
  row('connect: RSS per connection KiB', (s) => s.figures.rssPerConnKiB, true, con);
  row('connect: server CPU ms per connection', (s) => s.figures.serverCpuMsPerConn, true, con);
  row('connect: time to resumed p50 ms', (s) => lat(s, 'connectP50'), true, con);
  row('connect: time to resumed p99 ms', (s) => lat(s, 'connectP99'), true, con);
  lines.push('', 'Ratios are "how many times better Hubbub is" (higher is better for Hubbub, for every row).');
  const ceiling = uwsCeiling(r);
  if (ceiling) lines.push('', `Fanout deliveries per server CPU-second, ${ceiling}: the ceiling of any uWS-based server on this box (no storage, no checks, C++ fanout), and so the context of the "≥ 3× plain ws" target.`);
  lines.push('');
  return lines;
}

const COMPARED = ['deliveriesPerServerCpuS', 'serverCpuPct', 'latencyP50', 'latencyP99', 'latencyP999', 'ackedPerS', 'loginP99', 'historyP99', 'firstMessageP50', 'firstMessageP99', 'rssPerConnKiB', 'serverCpuMsPerConn', 'connectP50', 'connectP99', 'appendsPerS', 'writerCpuUsPerAppend'];

/** This run's figures next to the previous run's, per server and scenario. */
function previousRun(r: BenchResult): string[] {
  const lines = [`## Against the previous run (${PREVIOUS_RUN}, the previous generator)`, '', '| server | scenario | figure | this run | previous run | this / previous |', '|---|---|---|---|---|---|'];
  let any = false;
  for (const s of r.scenarios) {
    const prev = PREVIOUS[`${s.kind}/${s.name}`];
    if (!prev) continue;
    for (const k of COMPARED) {
      const before = prev.figures[k];
      if (before === undefined || !(k in s.figures)) continue;
      const now = lat(s, k);
      any = true;
      lines.push(`| ${s.server} | ${s.name} | ${k} | ${fmt(now)} | ${fmt(before)} | ${Number.isFinite(now / before) ? `${fmt(now / before)}×` : '–'} |`);
    }
  }
  if (r.connScale) {
    for (const p of PREVIOUS_CONN_SCALE.filter((x) => x.connections > 0)) {
      const now = r.connScale.steps.find((x) => x.connections === p.connections);
      if (now) (any = true), lines.push(`| Hubbub (1 replica) | conn-scale | rssPerConnKiB at ${fmt(p.connections)} | ${fmt(now.rssPerConnKiB)} | ${fmt(p.rssPerConnKiB)} | ${fmt(now.rssPerConnKiB / p.rssPerConnKiB)}× |`);
    }
  }
  return any ? [...lines, '', `The previous run's sizes were this full run's except fanoutRate=200 (it ran \`--set fanoutRate=200 --cassandra --pg-stats\`); its latencies came from a generator that itself needed about as much CPU as the servers.`, ''] : [];
}

/** The generator's own cost and health per scenario, beside the servers'. */
function generatorCost(r: BenchResult): string[] {
  const rows = r.scenarios.filter((s) => s.generator);
  if (!rows.length) return [];
  const lines = [
    '## The generator measured too (honest clocks)',
    '',
    `Each generator process reports its own CPU (\`process.cpuUsage\`) and event-loop delay (\`monitorEventLoopDelay\`) over the measured window; a scenario whose worst process's event-loop p99 passes the \`generator.eldP99\` bound is marked invalid and its latencies are not reported as the server's. Previous generator: ${PREVIOUS_RUN}.`,
    '',
    '| server | scenario | processes | generator CPU s (window / whole) | event loop p99 / max ms | generator CPU per unit | previous generator | generator ÷ previous | server CPU per 1,000 deliveries ms | valid |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const s of rows) {
    const g = s.generator!;
    const prev = PREVIOUS[`${s.kind}/${s.name}`];
    let unit = '–';
    let before = NaN;
    let now = NaN;
    if (g.msPer1kDeliveries != null) (now = g.msPer1kDeliveries), (unit = `${fmt(now)} ms per 1,000 deliveries`), (before = prev?.generatorMsPer1k ?? NaN);
    else if (g.msPerSocket != null) (now = g.msPerSocket), (unit = `${fmt(now, 3)} ms per socket`), (before = prev?.generatorMsPerSocket ?? NaN);
    else if (g.msPerCall != null) (now = g.msPerCall), (unit = `${fmt(now, 3)} ms per call`), (before = prev?.generatorMsPerCall ?? NaN);
    lines.push(
      `| ${s.server} | ${s.name} | ${g.processes} | ${fmt(g.windowCpuS)} / ${fmt(g.totalCpuS)} | ${fmt(g.eldP99Ms)} / ${fmt(g.eldMaxMs)} | ${unit} | ${fmt(before, 3)} | ${Number.isFinite(now / before) ? `${fmt(now / before)}×` : '–'} | ${fmt(s.figures.serverCpuMsPer1k)} | ${s.invalid ? `**invalid**: ${s.invalid}` : 'yes'} |`,
    );
  }
  lines.push('');
  return lines;
}

function thresholdSection(r: BenchResult): string[] {
  const lines = ['## Thresholds (load-tests/harness/thresholds.ts)', ''];
  const n = THRESHOLDS.length;
  if (!r.misses.length) lines.push(`All thresholds that applied to this run's scenarios were met (${n} rows in the table; bounds of a ${r.mode} run${Object.keys(r.overrides).length ? `, overridden: ${Object.entries(r.overrides).map(([k, v]) => `${k}=${v}`).join(', ')}` : ''}).`, '');
  else {
    lines.push(`**${r.misses.length} missed** (bounds of a ${r.mode} run${Object.keys(r.overrides).length ? `, overridden: ${Object.entries(r.overrides).map(([k, v]) => `${k}=${v}`).join(', ')}` : ''}):`, '', '| threshold | server | value | bound | target |', '|---|---|---|---|---|');
    for (const m of r.misses) lines.push(`| \`${m.id}\` | ${m.server} | ${fmt(m.value)} | ${m.op} ${fmt(m.bound)} | ${m.target} |`);
    lines.push('');
  }
  return lines;
}

export function markdown(r: BenchResult): string {
  const lines: string[] = [];
  lines.push(`# Hubbub bench: ${r.mode} run, ${r.startedAt}`, '');
  lines.push(
    `Machine: ${r.machine.cpus} cores (${r.machine.cpuModel}), ${r.machine.memGiB} GiB, Node ${r.machine.node}; generator: ${r.generator}; servers, PostgreSQL, Redis and the generator share the machine. Run took ${r.durationS ?? '?'} s. Overall: **${r.ok ? 'PASS' : 'FAIL'}**.`,
    '',
  );
  lines.push(`Sizes: ${Object.entries(r.sizes).map(([k, v]) => `${k}=${v}`).join(', ')}`, '');
  if (r.charts && Object.keys(r.charts).length) {
    lines.push('## Charts', '');
    const titles: Record<string, string> = { latency: 'Fanout send→deliver latency distribution', rss: 'Server RSS against open sockets', connect: 'Connect storm progress' };
    for (const [k, f] of Object.entries(r.charts)) lines.push(`![${titles[k] ?? k}](${f})`, '');
  }
  lines.push(...thresholdSection(r));
  const targets = r.targets ?? targetRows(r);
  const graded = targets.filter((t) => t.met !== null);
  lines.push(
    r.mode === 'quick'
      ? `Quick run: the thresholds are the correctness checks plus loose sanity bounds; the issue's targets are graded below but do not fail a quick run: ${graded.filter((t) => t.met).length} of ${graded.length} met (at quick sizes).`
      : `Full run: the thresholds are the issue's targets, so PASS means every target the run measured was met: ${graded.filter((t) => t.met).length} of ${graded.length} graded targets met.`,
    '',
  );
  if (targets.length) {
    lines.push('## Targets', '', '| target | this run | met |', '|---|---|---|');
    for (const t of targets) lines.push(`| ${t.target} | ${t.figure}${t.note ? ` (${t.note})` : ''} | ${t.met === null ? '–' : t.met ? 'yes' : '**no**'} |`);
    lines.push('');
  }
  lines.push(...sideBySide(r));
  lines.push(...generatorCost(r));
  lines.push(...previousRun(r));
  lines.push('## Scenarios', '', '| server | scenario | thresholds | key figures | CPU seconds over the whole scenario |', '|---|---|---|---|---|');
  for (const s of r.scenarios) {
    // An invalid scenario's latencies measured the generator: they are not shown as the server's.
    const figs = Object.entries(s.figures)
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => `${k} ${s.invalid && LATENCY_FIGURE.test(k) ? 'invalid' : fmt(v)}`)
      .join(', ');
    const cpu = ['server', 'postgres', 'redis', 'cassandra', 'writer', 'generator'].filter((k) => k in s.cpuS).map((k) => `${k} ${fmt(s.cpuS[k], 1)}`).join(', ');
    const missed = r.misses.filter((m) => m.scenario === s.name && m.server === s.server).map((m) => `\`${m.id}\``);
    lines.push(`| ${s.server} | ${s.name} | ${missed.length ? `**missed**: ${missed.join(', ')}` : 'pass'} | ${figs} | ${cpu} |`);
  }
  lines.push('');
  if (r.connScale) {
    const c = r.connScale;
    lines.push('## Idle connections on one hub process (load-tests/conn-scale.ts)', '');
    lines.push(`Baseline RSS ${fmt(c.baselineRssMiB)} MiB; stopped: ${c.stopReason}; sockets retried after closing before resumed: ${fmt(c.retries ?? 0)}.`, '');
    lines.push(
      '| sockets | hub RSS MiB | RSS per socket KiB (above baseline) | RSS slope from the previous step, KiB per socket | V8 heap used MiB | heap per socket KiB | hub CPU s to reach |',
      '|---|---|---|---|---|---|---|',
    );
    c.steps.forEach((s, i) => {
      const prev = c.steps[i - 1];
      const slope = prev && s.connections > prev.connections ? ((s.rssMiB - prev.rssMiB) * 1024) / (s.connections - prev.connections) : undefined;
      lines.push(`| ${fmt(s.connections)} | ${fmt(s.rssMiB)} | ${fmt(s.rssPerConnKiB)} | ${slope === undefined ? '–' : fmt(slope)} | ${s.heapUsedMiB === undefined ? '–' : fmt(s.heapUsedMiB)} | ${s.heapPerConnKiB === undefined ? '–' : fmt(s.heapPerConnKiB)} | ${fmt(s.cpuS, 1)} |`);
    });
    const first = c.steps[0];
    const last = c.steps.at(-1);
    if (first && last && last.connections > first.connections) {
      lines.push('', `RSS slope over the steps (${fmt(first.connections)} → ${fmt(last.connections)} sockets): ${fmt(((last.rssMiB - first.rssMiB) * 1024) / (last.connections - first.connections))} KiB per socket.`);
    }
    lines.push('');
  }
  const withStats = r.scenarios.filter((s) => s.pgStatements?.length);
  if (withStats.length) {
    lines.push('## PostgreSQL statements by time (--pg-stats)', '', '| scenario | calls | mean ms | total ms | rows per call | buffers per call | statement |', '|---|---|---|---|---|---|---|');
    for (const s of withStats) {
      for (const q of s.pgStatements!) lines.push(`| ${s.name} | ${fmt(q.calls)} | ${fmt(q.meanMs, 3)} | ${fmt(q.totalMs)} | ${fmt(q.rowsPerCall)} | ${fmt(q.buffersPerCall)} | \`${q.query.slice(0, 110).replaceAll('|', '\\|')}\` |`);
    }
    lines.push('');
  }
  if (r.profile) {
    const p = r.profile;
    lines.push(`## Where hub-a's CPU went (--cpu-prof over: ${p.scenarios.join(', ')})`, '');
    lines.push(`Busy ${fmt(p.totalMs)} ms. Profile: \`${p.file}\`.`, '');
    lines.push('| share | area |', '|---|---|', ...p.byArea.slice(0, 14).map((a) => `| ${a.pct}% | ${a.area} |`), '');
    lines.push('| share | function (self time) | where |', '|---|---|---|', ...p.byFunction.slice(0, 15).map((f) => `| ${f.pct}% | \`${f.fn}\` | ${f.where} |`), '');
  }
  if (r.notes.length) lines.push('## Notes', '', ...r.notes.map((n) => `- ${n}`), '');
  return lines.join('\n');
}

/** Renders the report's charts (SVG beside the report) into `r.charts`. */
export async function renderCharts(r: BenchResult, dir: string, stamp: string): Promise<void> {
  const rows = chartRows(r);
  try {
    r.charts = await writeCharts(dir, stamp, [
      { name: 'latency', spec: latencySpec(rows.latency, `Fanout send→deliver latency, ${r.sizes.fanoutRate} sends/s into rooms of ${r.sizes.roomSize} (${r.mode} run)`), rows: rows.latency.length },
      { name: 'rss', spec: rssSpec(rows.rss, 'Server RSS against open sockets'), rows: rows.rss.length },
      { name: 'connect', spec: connectSpec(rows.connect, `Connect storm: sockets resumed over time (${r.sizes.connectN} sockets)`), rows: rows.connect.length },
    ]);
  } catch (err) {
    r.notes.push(`charts not rendered: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The three charts' data from the scenarios. */
function chartRows(r: BenchResult) {
  const label = (s: ScenarioResult) => COLUMNS.find((c) => c.kind === s.kind)?.short ?? s.server;
  // An invalid scenario is drawn too, labelled as such: its curve measured the generator as well.
  const latency = r.scenarios
    .filter((s) => s.name === 'fanout')
    .flatMap((s) => (s.distributions.fanout_latency ?? []).map((d) => ({ server: s.invalid ? `${label(s)} (invalid: ${s.invalid})` : label(s), p: d.p, ms: Math.max(d.ms, 0.001) })));
  const rss = r.scenarios
    .filter((s) => s.name === 'connect' && typeof s.figures.rssAtPeakMiB === 'number')
    .flatMap((s) => [
      { server: `${label(s)} (connect storm)`, sockets: 0, rssMiB: num(s.figures.rssBeforeMiB) },
      { server: `${label(s)} (connect storm)`, sockets: num(s.figures.connections), rssMiB: num(s.figures.rssAtPeakMiB) },
    ]);
  if (r.connScale) {
    rss.push({ server: 'Hubbub, 1 replica (conn-scale)', sockets: 0, rssMiB: r.connScale.baselineRssMiB });
    for (const st of r.connScale.steps) rss.push({ server: 'Hubbub, 1 replica (conn-scale)', sockets: st.connections, rssMiB: st.rssMiB });
    for (const p of PREVIOUS_CONN_SCALE) rss.push({ server: `Hubbub, 1 replica (conn-scale, ${PREVIOUS_RUN})`, sockets: p.connections, rssMiB: p.rssMiB });
  }
  const connect = r.scenarios
    .filter((s) => s.name === 'connect' && s.timeline?.length)
    .flatMap((s) => {
      let total = 0;
      return [{ server: label(s), s: 0, resumed: 0 }, ...s.timeline!.map((n, i) => ({ server: label(s), s: round((i + 1) / 10, 1), resumed: (total += n) }))];
    });
  return { latency, rss, connect };
}

/**
 * Checks the thresholds (marking invalid scenarios), grades the targets, renders the charts and
 * writes the report. `r.ok` ends false when a threshold was missed or a scenario broke.
 */
export async function finishReport(r: BenchResult, dir: string, stamp: string, overrides = new Map<string, number>()) {
  const { misses, invalid } = evaluate(r.scenarios, r.mode, overrides);
  r.misses = misses;
  for (const s of r.scenarios) {
    if (invalid.has(s)) s.invalid = `generator event-loop p99 ${fmt(s.figures.generatorEldP99Ms)} ms`;
    s.ok = !misses.some((m) => m.scenario === s.name && m.server === s.server);
  }
  if (misses.length) r.ok = false;
  r.targets = targetRows(r);
  await renderCharts(r, dir, stamp);
  const jsonFile = path.join(dir, `${stamp}.json`);
  const mdFile = path.join(dir, 'latest.md');
  const md = markdown(r) + '\n';
  writeFileSync(jsonFile, JSON.stringify(r, null, 2) + '\n');
  writeFileSync(path.join(dir, `${stamp}.md`), md);
  writeFileSync(mdFile, md);
  return { jsonFile, mdFile };
}
