import postgres from 'postgres';
/**
 * Where a hub's time went, for `--profile`: its V8 .cpuprofile (`--cpu-prof`) summarised by source area and function.
 */
import { readFileSync } from 'node:fs';
import { round } from './procs.ts';

/** Source areas by where a frame's code lives (a .cpuprofile's url); the first match wins. */
const AREAS: [string, RegExp][] = [
  ['(garbage collector)', /^\(garbage collector\)$|Scaveng|MarkCompact|Sweep/],
  ['(program)', /^\(program\)$/],
  ['hub (server/src/hub)', /server\/src\/hub\//],
  ['bus (server/src/bus)', /server\/src\/bus\//],
  ['message store (server/src/store)', /server\/src\/store\//],
  ['other server code: auth, api, http', /server\/src\//],
  ['drizzle-orm', /drizzle-orm/],
  ['postgres.js driver', /node_modules\/postgres\//],
  ['ioredis', /node_modules\/(ioredis|@ioredis|redis-parser|denque|cluster-key-slot)\//],
  ['cassandra-driver', /cassandra-driver/],
  ['zod', /node_modules\/zod\//],
  ['prom-client', /prom-client/],
  ['pino', /node_modules\/(pino|sonic-boom|thread-stream)/],
  ['jose', /node_modules\/jose\//],
  ['tRPC', /@trpc\//],
  ['argon2', /argon2/],
  ['uWebSockets.js', /uws|uWebSockets/i],
  ['other node_modules', /node_modules\//],
  ['node internals', /^node:|^internal\/|\bnode:/],
];
const areaOf = (where: string) => AREAS.find(([, re]) => re.test(where))?.[0];

export interface ProfileSummary {
  totalMs: number;
  byArea: { area: string; pct: number }[];
  byFunction: { fn: string; where: string; pct: number }[];
}

/** Self time of a .cpuprofile by area and by function, idle excluded (waiting is not work). */
export function summarizeProfile(file: string, top = 25): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
    samples: number[];
    timeDeltas: number[];
  };
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const areas = new Map<string, number>();
  const fns = new Map<string, number>();
  let total = 0;
  for (const n of p.nodes) {
    const us = self.get(n.id);
    const { functionName, url, lineNumber } = n.callFrame;
    if (!us || functionName === '(idle)') continue;
    total += us;
    const area = areaOf(functionName.startsWith('(') ? functionName : url) ?? (url ? 'other' : 'native / builtins');
    areas.set(area, (areas.get(area) ?? 0) + us);
    const where = `${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(server|load-tests|db)\//, '$1/')}:${lineNumber + 1}`;
    const key = `${functionName || '(anonymous)'} ${where}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
  }
  const pct = (us: number) => round((us / total) * 100, 1);
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return {
    totalMs: Math.round(total / 1000),
    byArea: sorted(areas).map(([area, us]) => ({ area, pct: pct(us) })),
    byFunction: sorted(fns)
      .slice(0, top)
      .map(([k, us]) => ({ fn: k.split(' ')[0]!, where: k.split(' ')[1]!, pct: pct(us) })),
  };
}

/** One statement's share of a scenario. */
export interface PgStatement {
  calls: number;
  totalMs: number;
  meanMs: number;
  rowsPerCall: number;
  /** Shared buffers touched per call (hit + read): a sequential scan shows here first. */
  buffersPerCall: number;
  query: string;
}

/** The PostgreSQL settings pg_stat_statements needs (the library loads at server start). */
export const PG_STATS_CONFIG = { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'all' };

/** Reset before a scenario, read after it; times are execution wall time inside the server. */
export async function openPgStats(databaseUrl: string) {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  await sql`create extension if not exists pg_stat_statements`;
  return {
    reset: async () => void (await sql`select pg_stat_statements_reset()`),
    async top(n = 6): Promise<PgStatement[]> {
      const rows = await sql<{ calls: string; total: number; rows: string; blocks: string; query: string }[]>`
        select calls, total_exec_time as total, rows, shared_blks_hit + shared_blks_read as blocks, query from pg_stat_statements
        where query not like '%pg_stat_statements%' and dbid = (select oid from pg_database where datname = current_database())
        order by total_exec_time desc limit ${n}`;
      return rows.map((r) => {
        const calls = Math.max(Number(r.calls), 1);
        const q = r.query.replace(/\s+/g, ' ').slice(0, 200);
        return {
          calls: Number(r.calls),
          totalMs: round(r.total, 0),
          meanMs: round(r.total / calls, 3),
          rowsPerCall: round(Number(r.rows) / calls, 1),
          buffersPerCall: round(Number(r.blocks) / calls, 1),
          query: q,
        };
      });
    },
    close: () => sql.end({ timeout: 5 }),
  };
}
