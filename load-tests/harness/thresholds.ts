/**
 * How the table's thresholds are checked: a figure (or counter) against its row's bound in this run's mode, an override
 * of `--threshold`, or a bound relative to another scenario's figure; and the targets every run is graded against.
 */
import type { Miss } from './report.ts';
import type { ServerKind } from './servers.ts';

export type Op = '<=' | '>=' | '==';
export interface Threshold {
  /** `<scenario>.<metric>`: what `--threshold` names and the report prints; `scenario` is `*` for every scenario. */
  id: string;
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

const value = (s: ScenarioFigures, metric: string) => {
  const v = s.figures[metric] ?? s.counters[metric];
  return typeof v === 'number' ? v : NaN;
};

/** Ratios of Hubbub's figures to a peer's in the same scenario: `vs` maps a new figure to [figure, peer kind]. */
export function derive(all: ScenarioFigures[], vs: Record<string, Record<string, [string, ServerKind]>>) {
  for (const [name, ratios] of Object.entries(vs)) {
    const hub = all.find((s) => s.kind === 'hubbub' && s.name === name);
    for (const [k, [f, kind]] of Object.entries(ratios)) {
      const peer = all.find((s) => s.kind === kind && s.name === name);
      const [h, b] = [hub ? value(hub, f) : NaN, peer ? value(peer, f) : NaN];
      if (hub && Number.isFinite(h) && b > 0) hub.figures[k] = Math.round((h / b) * 100) / 100;
    }
  }
}

/** Parses `--threshold ID=VALUE` options, refusing ids the table does not have. */
export function parseOverrides(table: Threshold[], list: string[]): Map<string, number> {
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

/** The bound of `t` in this run: an override, a relative bound (full runs), or the mode's. */
function boundOf(t: Threshold, mode: 'quick' | 'full', s: ScenarioFigures, all: ScenarioFigures[], overrides: Map<string, number>): number {
  const o = overrides.get(t.id);
  if (o !== undefined) return o;
  if (!t.relative || mode === 'quick') return mode === 'quick' ? t.quick : t.full;
  const base = all.find((x) => x.name === t.relative!.scenario && x.kind === s.kind);
  const b = base ? value(base, t.relative.metric) : NaN;
  return Number.isFinite(b) ? Math.round(b * t.relative.factor * 100) / 100 : Infinity;
}

/**
 * Checks every scenario against the table: a missing figure (NaN) misses. A scenario that misses `generator.eldP99` is
 * returned as invalid (the report shows none of its latencies as the server's).
 */
export function evaluate(table: Threshold[], all: ScenarioFigures[], mode: 'quick' | 'full', overrides = new Map<string, number>()) {
  const misses: (Miss & { grade?: true })[] = [];
  const invalid = new Set<ScenarioFigures>();
  for (const s of all)
    for (const t of table) {
      if ((t.scenario !== '*' && t.scenario !== s.name) || (t.servers !== 'all' && !t.servers.includes(s.kind))) continue;
      const v = value(s, t.metric);
      if (t.scenario === '*' && Number.isNaN(v)) continue; // a scenario without a generator
      const b = boundOf(t, mode, s, all, overrides);
      if (t.op === '<=' ? v <= b : t.op === '>=' ? v >= b : v === b) continue;
      if (t.id === 'generator.eldP99') invalid.add(s);
      const { id, op, target, grade } = t;
      misses.push({ id, scenario: s.name, server: s.server, value: v, op, bound: b, target, ...(grade ? { grade } : {}) });
    }
  return { misses, invalid };
}

/** Every target (a grade row, or a bound that differs between quick and full runs) against its full-run bound. */
export function targets(table: Threshold[], all: ScenarioFigures[], overrides: Map<string, number>) {
  const rows = table.filter((t) => t.grade || t.relative || (t.full !== t.quick && t.id !== 'generator.eldP99'));
  const missed = evaluate(rows, all, 'full', overrides).misses;
  return all.flatMap((s) =>
    rows
      .filter((t) => s.kind === 'hubbub' && t.scenario === s.name && !(t.grade && Number.isNaN(value(s, t.metric))))
      .map((t) => {
        const miss = missed.find((m) => m.id === t.id && m.server === s.server);
        const bound = miss?.bound ?? boundOf(t, 'full', s, all, overrides);
        return { id: t.id, scenario: s.name, server: s.server, value: value(s, t.metric), op: t.op, bound, target: t.target, met: !miss };
      }),
  );
}
