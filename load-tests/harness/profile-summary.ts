/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by function and by source
 * area (hub, store, drizzle, postgres.js, ioredis, uWS, zod, GC …), so the bench can say where
 * hub time goes without opening DevTools.
 *
 *   node --import tsx load-tests/harness/profile-summary.ts <file.cpuprofile> [top]
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Buckets by the source file of the frame; first match wins. */
const AREAS: [string, RegExp][] = [
  ['(garbage collector)', /^\(garbage collector\)$/],
  ['(idle)', /^\(idle\)$/],
  ['(program)', /^\(program\)$/],
  ['hub (server/src/hub)', /server\/src\/hub\//],
  ['bus (server/src/bus)', /server\/src\/bus\//],
  ['message store (server/src/store)', /server\/src\/store\//],
  ['auth / api / http (server/src)', /server\/src\//],
  ['drizzle-orm', /node_modules\/drizzle-orm\//],
  ['postgres.js driver', /node_modules\/postgres\//],
  ['ioredis', /node_modules\/(ioredis|@ioredis|redis-parser|denque|cluster-key-slot)\//],
  ['cassandra-driver', /node_modules\/cassandra-driver\//],
  ['zod', /node_modules\/zod\//],
  ['prom-client', /node_modules\/prom-client\//],
  ['pino', /node_modules\/(pino|sonic-boom|thread-stream)/],
  ['jose', /node_modules\/jose\//],
  ['tRPC', /node_modules\/@trpc\//],
  ['uWebSockets.js', /uws|uWebSockets/i],
  ['socket.io / engine.io / ws', /node_modules\/(socket\.io|engine\.io|ws|@socket\.io)/],
  ['other node_modules', /node_modules\//],
  ['node internals', /^node:|^internal\//],
  ['native / builtins', /^$/],
];

export interface ProfileSummary {
  totalMs: number;
  byArea: { area: string; ms: number; pct: number }[];
  byFunction: { fn: string; where: string; ms: number; pct: number }[];
}

export function summarizeProfile(file: string, top = 25): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  let total = 0;
  const areas = new Map<string, number>();
  const fns = new Map<string, { where: string; us: number }>();
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const { functionName, url, lineNumber } = n.callFrame;
    const name = functionName || '(anonymous)';
    if (name === '(idle)') continue; // waiting is not work
    total += us;
    const key = name.startsWith('(') ? name : url;
    const area = AREAS.find(([, re]) => re.test(key))?.[0] ?? 'other';
    areas.set(area, (areas.get(area) ?? 0) + us);
    const short = url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(server|load-tests|db)\//, '$1/');
    const fk = `${name} ${short}:${lineNumber + 1}`;
    const cur = fns.get(fk) ?? { where: `${short}:${lineNumber + 1}`, us: 0 };
    cur.us += us;
    fns.set(fk, cur);
  }
  const pct = (us: number) => Math.round((us / total) * 1000) / 10;
  return {
    totalMs: Math.round(total / 1000),
    byArea: [...areas].sort((a, b) => b[1] - a[1]).map(([area, us]) => ({ area, ms: Math.round(us / 1000), pct: pct(us) })),
    byFunction: [...fns]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, top)
      .map(([k, v]) => ({ fn: k.split(' ')[0]!, where: v.where, ms: Math.round(v.us / 1000), pct: pct(v.us) })),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: profile-summary.ts <file.cpuprofile> [top]');
    process.exit(2);
  }
  const s = summarizeProfile(file, Number(process.argv[3] ?? 30));
  console.log(`busy time: ${s.totalMs} ms (idle excluded)\n\nby area:`);
  for (const a of s.byArea) console.log(`  ${String(a.pct).padStart(5)}%  ${String(a.ms).padStart(7)} ms  ${a.area}`);
  console.log('\ntop functions (self time):');
  for (const f of s.byFunction) console.log(`  ${String(f.pct).padStart(5)}%  ${String(f.ms).padStart(7)} ms  ${f.fn}  ${f.where}`);
}
