/**
 * The bench's threshold table (load-tests/scenarios.ts, checked by harness/thresholds.ts): every row can fail and is
 * named when it does, overrides work and are checked, a slow generator marks its scenario
 * invalid; and the runner's merge of the generator processes' HdrHistograms and counters.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeHistogram, merge, newHistogram, recordMs, type GenReport } from '../../load-tests/gen/runner.ts';
import type { ServerKind } from '../../load-tests/harness/servers.ts';
import { evaluate, parseOverrides, type ScenarioFigures, type Threshold } from '../../load-tests/harness/thresholds.ts';
import { THRESHOLDS } from '../../load-tests/scenarios.ts';

const KINDS: ServerKind[] = ['hubbub', 'uws', 'ws', 'socketio'];

/** A figure that passes `t` in `mode` (its bound itself). */
const passing = (t: Threshold, mode: 'quick' | 'full') => {
  const b = mode === 'quick' ? t.quick : t.full;
  return Number.isFinite(b) ? b : 1;
};
/** A figure that misses `t` in `mode`. */
const failing = (t: Threshold, mode: 'quick' | 'full') => {
  const b = mode === 'quick' ? t.quick : t.full;
  return t.op === '>=' ? b - 1 : b + 1;
};

/** Figures of scenario `name` that pass every threshold of the table in `mode`. */
function passingFigures(name: string, mode: 'quick' | 'full'): Record<string, number> {
  const figures: Record<string, number> = {};
  for (const o of THRESHOLDS) if (o.scenario === name || o.scenario === '*') figures[o.metric] = passing(o, mode);
  return figures;
}

function scenarioFor(t: Threshold, metricValue: number, mode: 'quick' | 'full'): ScenarioFigures[] {
  const kind = t.servers === 'all' ? 'hubbub' : t.servers[0]!;
  const name = t.scenario === '*' ? 'fanout' : t.scenario;
  // Every other threshold of the scenario passes, so the only miss can be this one.
  const figures = { ...passingFigures(name, mode), [t.metric]: metricValue };
  const out: ScenarioFigures[] = [{ name, kind, server: kind, figures, counters: {} }];
  if (t.relative)
    out.push({
      name: t.relative.scenario,
      kind,
      server: kind,
      figures: { ...passingFigures(t.relative.scenario, mode), [t.relative.metric]: 10 },
      counters: {},
    });
  return out;
}

describe('bench threshold table', () => {
  it('has unique ids, each naming its scenario and metric, and a target', () => {
    const ids = THRESHOLDS.map((t) => t.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const t of THRESHOLDS) {
      assert.ok(t.target.length > 5, t.id);
      if (t.scenario !== '*') assert.equal(t.id, `${t.scenario}.${t.metric}`);
    }
  });

  for (const mode of ['full', 'quick'] as const) {
    it(`every threshold can fail in a ${mode} run, and the miss names it`, () => {
      let checked = 0;
      for (const t of THRESHOLDS) {
        if (t.relative) {
          if (mode === 'quick') continue; // relative bounds are full-run targets
          const all = scenarioFor(t, 12, mode); // 12 > 1.1 × 10
          const { misses } = evaluate(THRESHOLDS, all, mode);
          assert.deepEqual(
            misses.map((m) => m.id),
            [t.id],
            t.id,
          );
          assert.equal(misses[0]!.bound, 11);
          checked++;
          continue;
        }
        const ok = evaluate(THRESHOLDS, scenarioFor(t, passing(t, mode), mode), mode);
        assert.deepEqual(ok.misses, [], `${t.id} passes at its bound`);
        const { misses } = evaluate(THRESHOLDS, scenarioFor(t, failing(t, mode), mode), mode);
        assert.deepEqual(
          misses.map((m) => m.id),
          [t.id],
          `${t.id} fails past its bound`,
        );
        assert.equal(misses[0]!.target, t.target);
        checked++;
      }
      assert.ok(checked >= THRESHOLDS.length - 1);
    });
  }

  it('a missing figure misses its threshold (a scenario that measured nothing does not pass)', () => {
    const { misses } = evaluate(THRESHOLDS, [{ name: 'fanout', kind: 'hubbub', server: 'Hubbub', figures: {}, counters: {} }], 'quick');
    assert.ok(misses.some((m) => m.id === 'fanout.latencyP50'));
    assert.ok(misses.some((m) => m.id === 'fanout.fanout_lost'));
  });

  it('applies hubbub-only rows to Hubbub only', () => {
    const t = THRESHOLDS.find((x) => x.id === 'fanout.latencyP50')!;
    for (const kind of KINDS) {
      const s = scenarioFor(t, 1e9, 'full').map((x) => ({ ...x, kind }));
      const hit = evaluate(THRESHOLDS, s, 'full').misses.some((m) => m.id === t.id);
      assert.equal(hit, kind === 'hubbub', kind);
    }
  });

  it('--threshold overrides a bound (an impossible one fails), and refuses unknown ids or values', () => {
    const t = THRESHOLDS.find((x) => x.id === 'fanout.latencyP50')!;
    const s = scenarioFor(t, 1.5, 'full');
    assert.deepEqual(evaluate(THRESHOLDS, s, 'full').misses, []);
    const { misses } = evaluate(THRESHOLDS, s, 'full', parseOverrides(THRESHOLDS, ['fanout.latencyP50=0']));
    assert.deepEqual(
      misses.map((m) => [m.id, m.bound]),
      [['fanout.latencyP50', 0]],
    );
    assert.throws(() => parseOverrides(THRESHOLDS, ['fanout.nope=1']), /no such threshold/);
    assert.throws(() => parseOverrides(THRESHOLDS, ['fanout.latencyP50=fast']), /ID=NUMBER/);
  });

  it('a generator whose event loop lagged marks its scenario invalid', () => {
    const t = THRESHOLDS.find((x) => x.id === 'generator.eldP99')!;
    const s = scenarioFor(t, t.full + 1, 'full');
    const { misses, invalid } = evaluate(THRESHOLDS, s, 'full');
    assert.deepEqual(
      misses.map((m) => m.id),
      ['generator.eldP99'],
    );
    assert.ok(invalid.has(s[0]!));
    assert.equal(evaluate(THRESHOLDS, scenarioFor(t, t.full, 'full'), 'full').invalid.size, 0);
  });
});

describe('generator merge', () => {
  it('adds the processes’ histograms and counters, sums CPU, keeps the worst event loop', () => {
    const a = newHistogram();
    const b = newHistogram();
    for (let i = 1; i <= 100; i++) recordMs(a, i);
    for (let i = 101; i <= 200; i++) recordMs(b, i);
    const report = (worker: number, h: typeof a, eld: number): GenReport => ({
      worker,
      counters: { fanout_delivered: 100, fanout_lost: worker },
      hists: { fanout_latency: encodeHistogram(h) },
      windowCpuS: 0.5,
      totalCpuS: 1,
      windowS: 4,
      eld: { p50: 1, p99: eld, max: eld * 2 },
      timeline: worker === 0 ? [1, 2] : [3, 0, 5],
    });
    const m = merge([report(0, a, 3), report(1, b, 7)]);
    assert.equal(m.counters.fanout_delivered, 200);
    assert.equal(m.counters.fanout_lost, 1);
    assert.equal(m.hists.fanout_latency!.count, 200);
    assert.ok(Math.abs(m.hists.fanout_latency!.p50 - 100) < 0.2, String(m.hists.fanout_latency!.p50));
    assert.ok(Math.abs(m.hists.fanout_latency!.p99 - 198) < 0.3, String(m.hists.fanout_latency!.p99));
    assert.ok(Math.abs(m.hists.fanout_latency!.max - 200) < 0.2);
    assert.equal(m.generator.windowCpuS, 1);
    assert.equal(m.generator.totalCpuS, 2);
    assert.equal(m.generator.eldP99Ms, 7);
    assert.deepEqual(m.timeline, [4, 2, 5]);
  });
});
