/**
 * On-CPU profile of a hub by area, from `perf record -g` (run the bench with --perf-map so
 * hub-a writes /tmp/perf-<pid>.map and keeps interpreted frames on the native stack):
 *
 *   perf record -F 499 -g -p <hub-a pid> -o /tmp/hub.perf -- sleep 20
 *   node --import tsx load-tests/harness/perf-summary.ts /tmp/hub.perf
 *
 * Each sample goes to the innermost frame that belongs to a known area (drizzle, postgres.js,
 * ioredis, the hub's own modules, …); samples with no such frame go to the kernel, GC, JIT or
 * other native code by their leaf.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const AREAS: [string, RegExp][] = [
  ['drizzle-orm (query building)', /drizzle-orm/],
  ['postgres.js driver', /node_modules\/postgres\//],
  ['ioredis (bus, presence, rate limits)', /ioredis/],
  ['zod (validation)', /node_modules\/zod/],
  ['jose (JWT)', /node_modules\/jose/],
  ['tRPC', /@trpc/],
  ['prom-client', /prom-client/],
  ['pino', /node_modules\/pino/],
  ['argon2', /argon2/],
  ['hub: ws-handler (frame parse, validate)', /hub\/ws-handler/],
  ['hub: fanout, ordering, resume (hub.ts, connection.ts, wire.ts, feed.ts)', /hub\/(hub|connection|wire|feed|token-bucket)\./],
  ['hub: presence', /hub\/presence/],
  ['hub: event writer', /hub\/event-writer/],
  ['message store adapter', /store\/message-store/],
  ['auth, conversations, profiles services', /server\/src\/(auth|conversations|profiles|account)/],
  ['http / tRPC handler', /server\/src\/(http|api)/],
  ['other server code', /server\/src/],
  ['node streams and sockets (JS)', /node:internal\/streams|node:net\b|stream_base_commons/],
  ['node internals (JS: promises, timers, events)', /\bnode:(?!:)/],
];

export function perfSummary(file: string): { samples: number; areas: { area: string; pct: number }[] } {
  const text = execFileSync('perf', ['script', '-i', file, '-F', 'ip,sym,dso'], { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] });
  const counts = new Map<string, number>();
  let samples = 0;
  let stack: { sym: string; dso: string }[] = [];
  const flush = () => {
    if (!stack.length) return;
    samples++;
    let area: string | undefined;
    // Threads other than the main one: V8's platform workers (concurrent GC, background JIT)
    // and libuv's pool (argon2, crypto, dns).
    if (stack.some((f) => /PlatformWorkerThread/.test(f.sym))) area = 'V8 background threads (concurrent GC, JIT compiler)';
    else if (stack.some((f) => /uv__worker|worker \(/.test(f.sym) || /^uv_/.test(f.sym) && /threadpool/.test(f.sym))) area = 'libuv thread pool';
    for (const f of area ? [] : stack) {
      area = AREAS.find(([, re]) => re.test(f.sym))?.[0];
      if (area) break;
    }
    if (!area) {
      const leaf = stack[0]!;
      if (leaf.dso.includes('kernel')) area = 'kernel (outside any named JS frame)';
      else if (/Scaveng|Heap|GC|Marking|Sweep/.test(leaf.sym)) area = 'V8 garbage collector';
      else if (/compiler|Compile|Maglev|Turbofan/.test(leaf.sym)) area = 'V8 JIT compiler';
      else if (/uws/.test(leaf.dso)) area = 'uWS native';
      else area = 'other native (V8, libuv, libc)';
    }
    counts.set(area, (counts.get(area) ?? 0) + 1);
    stack = [];
  };
  for (const line of text.split('\n')) {
    if (!line.trim()) {
      flush();
      continue;
    }
    const m = /^\s*([0-9a-f]+)\s+(.*)\s+\((.*)\)\s*$/.exec(line);
    if (m) stack.push({ sym: m[2]!, dso: m[3]! });
  }
  flush();
  return {
    samples,
    areas: [...counts].sort((a, b) => b[1] - a[1]).map(([area, n]) => ({ area, pct: Math.round((n / samples) * 1000) / 10 })),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2] ?? 'perf.data';
  const s = perfSummary(file);
  console.log(`${s.samples} on-CPU samples`);
  for (const a of s.areas) console.log(`  ${String(a.pct).padStart(5)}%  ${a.area}`);
}
