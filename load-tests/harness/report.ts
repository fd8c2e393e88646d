import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ConnScaleResult } from '../conn-scale.ts';
import type { K6Metric } from './k6.ts';
import type { PgStatement } from './pg-stats.ts';
import type { ProfileSummary } from './profile-summary.ts';
import { round } from './procs.ts';
import type { ServerKind } from './servers.ts';

export interface ScenarioResult {
  name: string;
  server: string;
  kind: ServerKind;
  ok: boolean;
  exitCode: number;
  failedThresholds: string[];
  durationS: number;
  /** CPU seconds per watched group over the whole k6 run. */
  cpuS: Record<string, number>;
  /** CPU seconds per group inside the send window (fanout), if the script announced one. */
  windowCpuS: Record<string, number> | null;
  windowS: number | null;
  peakRssMiB: Record<string, number>;
  metrics: Record<string, K6Metric>;
  figures: Record<string, number | string | null>;
  serverLogs?: string[];
  /** bench --pg-stats: PostgreSQL's busiest statements during the run. */
  pgStatements?: PgStatement[];
}

export interface BenchResult {
  startedAt: string;
  mode: 'quick' | 'full';
  sizes: Record<string, number | string>;
  machine: Record<string, string | number>;
  k6?: string;
  scenarios: ScenarioResult[];
  connScale: ConnScaleResult | null;
  notes: string[];
  ok: boolean;
  durationS?: number;
  targets?: TargetRow[];
  /** Summary of hub-a's --cpu-prof profile (bench --profile). */
  profile?: { file: string; scenarios: string[] } & ProfileSummary;
}

interface TargetRow {
  target: string;
  figure: string;
  met: boolean | null;
  note?: string;
}

const find = (r: BenchResult, kind: ServerKind, name: string) => r.scenarios.find((s) => s.kind === kind && s.name === name);
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : NaN);
const fmt = (v: unknown, digits = 2) => {
  const n = num(v);
  if (!Number.isFinite(n)) return '–';
  return Math.abs(n) >= 1000 ? Math.round(n).toLocaleString('en-US') : String(round(n, digits));
};
const count = (s: ScenarioResult | undefined, metric: string) => num(s?.metrics[metric]?.count ?? 0);
const dpc = (s?: ScenarioResult) => num(s?.figures.deliveriesPerServerCpuS);

/**
 * Bare uWS vs plain ws in fanout deliveries per server CPU-second: the most any uWS-based
 * server can get over plain ws on this box, i.e. the room the "≥ 3× plain ws" target has.
 */
function uwsCeiling(r: BenchResult): string | null {
  const uws = find(r, 'uws', 'fanout');
  const ws = find(r, 'ws', 'fanout');
  if (!uws || !ws) return null;
  return `bare uWS reaches ${fmt(dpc(uws) / dpc(ws))}× plain ws (${fmt(dpc(uws))} vs ${fmt(dpc(ws))})`;
}

/** The persist workload against bare uWS, storing nothing: the most acked sends/s k6 can drive here. */
export const CEILING_SCENARIO = 'load-generator ceiling (persist workload, nothing stored)';

/** The issue's targets, each with this run's figure and whether it was met. */
function targetRows(r: BenchResult): TargetRow[] {
  const rows: TargetRow[] = [];
  const hub = find(r, 'hubbub', 'fanout');
  const ws = find(r, 'ws', 'fanout');
  const sio = find(r, 'socketio', 'fanout');
  if (hub && ws) {
    const x = dpc(hub) / dpc(ws);
    const ceiling = uwsCeiling(r);
    rows.push({
      target: 'Fanout deliveries per server CPU-s ≥ 3× plain ws',
      figure: `${fmt(x)}× (${fmt(dpc(hub))} vs ${fmt(dpc(ws))})`,
      met: x >= 3,
      ...(ceiling ? { note: `context: ${ceiling}` } : {}),
    });
  }
  if (hub && sio) {
    const x = dpc(hub) / dpc(sio);
    rows.push({ target: 'Fanout deliveries per server CPU-s ≥ 8× Socket.IO + Redis adapter', figure: `${fmt(x)}× (${fmt(dpc(hub))} vs ${fmt(dpc(sio))})`, met: x >= 8 });
  }
  const cs = r.connScale;
  if (cs) {
    const top = cs.steps.at(-1);
    const at50k = cs.steps.find((s) => s.connections >= 50_000);
    rows.push({
      target: '100k authenticated sockets on one hub process',
      figure: `${fmt(cs.maxConnections)} reached`,
      met: cs.maxConnections >= 100_000,
      note: cs.stopReason,
    });
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
      figure: `p50 ${fmt(f.latencyP50)} / p99 ${fmt(f.latencyP99)} / p99.9 ${fmt(f.latencyP999)} ms, ${fmt(f.deliveredPerS)} deliveries/s`,
      met: num(f.latencyP50) <= 2 && num(f.latencyP99) <= 10 && num(f.latencyP999) <= 25,
    });
    const broken = hub.failedThresholds.filter((t) => !t.startsWith('fanout_latency'));
    rows.push({
      target: 'Zero lost, duplicated or out-of-order deliveries',
      figure: `${lostEtc} (of ${fmt(count(hub, 'fanout_delivered'))})${broken.length ? `; failed: ${broken.join(', ')}` : ''}`,
      met: lostEtc === 0 && broken.length === 0,
    });
  }
  const rc = find(r, 'hubbub', 'reconnect');
  if (rc) {
    const p99 = num(rc.metrics.reconnect_first_message?.['p(99)']);
    const bad = count(rc, 'reconnect_not_resumed') + count(rc, 'reconnect_gaps') + count(rc, 'reconnect_duplicates') + count(rc, 'reconnect_lost');
    rows.push({
      target: 'Reconnect storm: all resumed, no gap, p99 time to first message ≤ 1 s',
      figure: `${fmt(count(rc, 'reconnect_resumed'))} resumed, ${bad} problems, p99 ${fmt(p99)} ms`,
      met: bad === 0 && p99 <= 1000 && rc.ok,
    });
  }
  const ceiling = r.scenarios.find((x) => x.name === CEILING_SCENARIO);
  for (const s of r.scenarios.filter((x) => x.kind === 'hubbub' && x.name.startsWith('persist'))) {
    const v = num(s.figures.ackedPerS);
    rows.push({
      target: `≥ 10k messages/s durable: ${s.name.replace(/^persist /, '')}`,
      figure: `${fmt(v)} acked/s`,
      met: v >= 10_000,
      ...(ceiling ? { note: `context: the same k6 workload against bare uWS storing nothing: ${fmt(num(ceiling.figures.ackedPerS))} acked/s` } : {}),
    });
  }
  for (const s of r.scenarios.filter((x) => x.name.startsWith('store path'))) {
    const v = num(s.figures.appendsPerS);
    rows.push({
      target: `≥ 10k messages/s durable: ${s.name} (EventWriter + store, no sockets)`,
      figure: `${fmt(v)} appends/s, ${fmt(s.figures.writerCpuUsPerAppend)} µs writer CPU each`,
      met: v >= 10_000 && s.ok,
    });
  }
  const fl = find(r, 'hubbub', 'fanout+login');
  if (fl) {
    const lp = num(fl.figures.loginP99);
    rows.push({ target: `Login p99 ≤ 50 ms at ${r.sizes.loginRate}/s (during fanout)`, figure: `${fmt(lp)} ms`, met: lp <= 50 });
    if (hub) {
      const x = num(fl.figures.latencyP99) / num(hub.figures.latencyP99);
      rows.push({ target: 'Fanout p99 during logins ≤ 1.1× without', figure: `${fmt(x)}× (${fmt(fl.figures.latencyP99)} vs ${fmt(hub.figures.latencyP99)} ms)`, met: x <= 1.1 });
    }
  }
  return rows;
}

/** The side-by-side table's servers, Hubbub first (the ratio columns compare it with each of the rest). */
const COLUMNS: { kind: ServerKind; head: string; short: string }[] = [
  { kind: 'hubbub', head: 'Hubbub (2 replicas, PostgreSQL + Redis)', short: 'Hubbub' },
  { kind: 'uws', head: 'bare uWS (1 process)', short: 'bare uWS' },
  { kind: 'ws', head: 'plain ws (1 process)', short: 'ws' },
  { kind: 'socketio', head: 'Socket.IO + Redis adapter (2 replicas)', short: 'Socket.IO' },
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
  lines.push('## Side by side (same workload, same run)', '');
  lines.push(`| figure | ${COLUMNS.map((c) => c.head).join(' | ')} | ${peers.map((c) => `Hubbub vs ${c.short}`).join(' | ')} |`);
  lines.push(`|---|${COLUMNS.map(() => '---|').join('')}${peers.map(() => '---|').join('')}`);
  const row = (label: string, get: (s: ScenarioResult) => unknown, invert = false, list = fan) => {
    const v = list.map((s) => (s ? get(s) : NaN));
    lines.push(`| ${label} | ${v.map((x) => fmt(x)).join(' | ')} | ${v.slice(1).map((x) => ratio(v[0], x, invert)).join(' | ')} |`);
  };
  row('fanout: deliveries per server CPU-second', (s) => s.figures.deliveriesPerServerCpuS);
  row('fanout: deliveries/s achieved', (s) => s.figures.deliveredPerS);
  row('fanout: server CPU % (of one core) in the send window', (s) => s.figures.serverCpuPct, true);
  row('fanout: latency p50 ms', (s) => s.figures.latencyP50, true);
  row('fanout: latency p99 ms', (s) => s.figures.latencyP99, true);
  row('fanout: latency p99.9 ms', (s) => s.figures.latencyP999, true);
  row('fanout: lost + out of order + duplicates', (s) => count(s, 'fanout_lost') + count(s, 'fanout_out_of_order') + count(s, 'fanout_duplicates'), true);
  row('connect: sockets held', (s) => s.figures.connections, false, con);
  row('connect: RSS per connection KiB', (s) => s.figures.rssPerConnKiB, true, con);
  row('connect: server CPU ms per connection', (s) => s.figures.serverCpuMsPerConn, true, con);
  row('connect: time to resumed p99 ms', (s) => s.figures.connectP99, true, con);
  lines.push('', 'Ratios are "how many times better Hubbub is" (higher is better for Hubbub, for every row).');
  const ceiling = uwsCeiling(r);
  if (ceiling) {
    lines.push(
      '',
      `Fanout deliveries per server CPU-second, ${ceiling}: the ceiling of any uWS-based server on this box (no storage, no checks, C++ fanout), and so the context of the "≥ 3× plain ws" target.`,
    );
  }
  lines.push('');
  return lines;
}

export function markdown(r: BenchResult): string {
  const lines: string[] = [];
  lines.push(`# Hubbub bench: ${r.mode} run, ${r.startedAt}`, '');
  lines.push(
    `Machine: ${r.machine.cpus} cores (${r.machine.cpuModel}), ${r.machine.memGiB} GiB, Node ${r.machine.node}, ${r.k6 ?? 'k6'}; servers, PostgreSQL, Redis and the load generator share it. Run took ${r.durationS ?? '?'} s. Overall: **${r.ok ? 'PASS' : 'FAIL'}**.`,
    '',
  );
  lines.push(`Sizes: ${Object.entries(r.sizes).map(([k, v]) => `${k}=${v}`).join(', ')}`, '');
  const targets = r.targets ?? targetRows(r);
  const graded = targets.filter((t) => t.met !== null);
  lines.push(
    r.mode === 'quick'
      ? `Quick run: k6 thresholds are the correctness checks plus loose sanity bounds (PASS/FAIL above); the issue's targets are graded below but do not fail a quick run: ${graded.filter((t) => t.met).length} of ${graded.length} met (at quick sizes).`
      : `Full run: k6 thresholds are the issue's targets, so PASS means every target the run measured was met: ${graded.filter((t) => t.met).length} of ${graded.length} met.`,
    '',
  );
  if (targets.length) {
    lines.push('## Targets (issue 4)', '', '| target | this run | met |', '|---|---|---|');
    for (const t of targets) lines.push(`| ${t.target} | ${t.figure}${t.note ? ` (${t.note})` : ''} | ${t.met === null ? '–' : t.met ? 'yes' : '**no**'} |`);
    lines.push('');
  }
  lines.push(...sideBySide(r));
  lines.push('## Scenarios', '', '| server | scenario | k6 thresholds | key figures | CPU seconds over the whole k6 run |', '|---|---|---|---|---|');
  for (const s of r.scenarios) {
    const figs = Object.entries(s.figures)
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => `${k} ${fmt(v)}`)
      .join(', ');
    const cpu = ['server', 'postgres', 'redis', 'cassandra', 'k6'].filter((k) => k in s.cpuS).map((k) => `${k} ${fmt(s.cpuS[k], 1)}`).join(', ');
    const th = s.ok ? 'pass' : `**fail**: ${s.failedThresholds.join('; ') || `exit ${s.exitCode}`}`;
    lines.push(`| ${s.server} | ${s.name} | ${th} | ${figs} | ${cpu} |`);
  }
  lines.push('');
  if (r.connScale) {
    const c = r.connScale;
    lines.push('## Idle connections on one hub process (load-tests/conn-scale.ts)', '');
    lines.push(`Baseline RSS ${fmt(c.baselineRssMiB)} MiB; stopped: ${c.stopReason}; sockets retried after closing before resumed: ${fmt(c.retries ?? 0)}.`, '');
    lines.push('| sockets | hub RSS MiB | RSS per socket KiB (above baseline) | hub CPU s to reach |', '|---|---|---|---|');
    for (const s of c.steps) lines.push(`| ${fmt(s.connections)} | ${fmt(s.rssMiB)} | ${fmt(s.rssPerConnKiB)} | ${fmt(s.cpuS, 1)} |`);
    lines.push('');
  }
  const withStats = r.scenarios.filter((s) => s.pgStatements?.length);
  if (withStats.length) {
    lines.push('## PostgreSQL statements by time (--pg-stats)', '', '| scenario | calls | mean ms | total ms | rows per call | buffers per call | statement |', '|---|---|---|---|---|---|---|');
    for (const s of withStats) {
      for (const q of s.pgStatements!) {
        lines.push(`| ${s.name} | ${fmt(q.calls)} | ${fmt(q.meanMs, 3)} | ${fmt(q.totalMs)} | ${fmt(q.rowsPerCall)} | ${fmt(q.buffersPerCall)} | \`${q.query.slice(0, 110).replaceAll('|', '\\|')}\` |`);
      }
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

export function writeReport(r: BenchResult, dir: string, stamp: string) {
  r.targets = targetRows(r);
  const jsonFile = path.join(dir, `${stamp}.json`);
  const mdFile = path.join(dir, 'latest.md');
  const md = markdown(r) + '\n';
  writeFileSync(jsonFile, JSON.stringify(r, null, 2) + '\n');
  writeFileSync(path.join(dir, `${stamp}.md`), md);
  writeFileSync(mdFile, md);
  return { jsonFile, mdFile };
}
