/**
 * The report's charts: Vega-Lite specs rendered to SVG in Node (no browser, no canvas), written
 * beside the Markdown report and linked from it.
 *   latency:  send→deliver latency distribution (percentile curve) of Hubbub and each peer
 *   rss:      server RSS against open sockets (connect storm of every server, conn-scale steps)
 *   connect:  connect storm progress: sockets resumed over time, per server
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';

type Row = Record<string, string | number>;

export async function renderSvg(spec: vegaLite.TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

const base = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', width: 560, height: 320, background: 'white' } as const;

/** rows: {server, p, ms}; x is the percentile on a "number of nines" scale. */
export function latencySpec(rows: Row[], title: string): vegaLite.TopLevelSpec {
  const data = rows.map((r) => ({ ...r, nines: Number(r.p) >= 100 ? 5 : -Math.log10(1 - Number(r.p) / 100) }));
  return {
    ...base,
    title,
    data: { values: data },
    mark: { type: 'line', point: true },
    encoding: {
      x: {
        field: 'nines',
        type: 'quantitative',
        title: 'percentile',
        scale: { domain: [0, 5] },
        axis: { values: [0, 1, 2, 3, 4, 5], labelExpr: "['p0','p90','p99','p99.9','p99.99','max'][datum.value]" },
      },
      y: { field: 'ms', type: 'quantitative', title: 'send→deliver latency (ms, log)', scale: { type: 'log' } },
      color: { field: 'server', type: 'nominal', title: 'server', legend: { labelLimit: 420, orient: 'bottom', columns: 1 } },
      tooltip: [{ field: 'server' }, { field: 'p' }, { field: 'ms' }],
    },
  };
}

/** rows: {server, sockets, rssMiB}. */
export function rssSpec(rows: Row[], title: string): vegaLite.TopLevelSpec {
  return {
    ...base,
    title,
    data: { values: rows },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'sockets', type: 'quantitative', title: 'open sockets' },
      y: { field: 'rssMiB', type: 'quantitative', title: 'server RSS (MiB)' },
      color: { field: 'server', type: 'nominal', title: 'server', legend: { labelLimit: 420, orient: 'bottom', columns: 1 } },
    },
  };
}

/** rows: {server, s, resumed}: cumulative sockets resumed at s seconds after the storm began. */
export function connectSpec(rows: Row[], title: string): vegaLite.TopLevelSpec {
  return {
    ...base,
    title,
    data: { values: rows },
    mark: { type: 'line' },
    encoding: {
      x: { field: 's', type: 'quantitative', title: 'seconds since the storm began' },
      y: { field: 'resumed', type: 'quantitative', title: 'sockets resumed' },
      color: { field: 'server', type: 'nominal', title: 'server', legend: { labelLimit: 420, orient: 'bottom', columns: 1 } },
    },
  };
}

/** Writes `<stamp>-<name>.svg` for each chart that has data; returns the file names written. */
export async function writeCharts(dir: string, stamp: string, charts: { name: string; spec: vegaLite.TopLevelSpec; rows: number }[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const c of charts) {
    if (!c.rows) continue;
    const file = `${stamp}-${c.name}.svg`;
    writeFileSync(path.join(dir, file), await renderSvg(c.spec));
    out[c.name] = file;
  }
  return out;
}
