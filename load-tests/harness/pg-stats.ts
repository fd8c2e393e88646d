import postgres from 'postgres';
import { round } from './procs.ts';

/** One statement's share of a scenario, from pg_stat_statements (bench --pg-stats). */
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

/**
 * Which statements PostgreSQL spent its time on during a scenario: reset before, read after.
 * Times are execution wall time inside the server (on this box, including waiting for a CPU).
 */
export async function openPgStats(databaseUrl: string) {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  await sql`create extension if not exists pg_stat_statements`;
  return {
    async reset() {
      await sql`select pg_stat_statements_reset()`;
    },
    async top(n = 6): Promise<PgStatement[]> {
      const rows = await sql<{ calls: string; total: number; rows: string; blocks: string; query: string }[]>`
        select calls, total_exec_time as total, rows, shared_blks_hit + shared_blks_read as blocks, query
        from pg_stat_statements
        where query not like '%pg_stat_statements%' and dbid = (select oid from pg_database where datname = current_database())
        order by total_exec_time desc limit ${n}`;
      return rows.map((r) => {
        const calls = Number(r.calls);
        return {
          calls,
          totalMs: round(r.total, 0),
          meanMs: round(r.total / Math.max(calls, 1), 3),
          rowsPerCall: round(Number(r.rows) / Math.max(calls, 1), 1),
          buffersPerCall: round(Number(r.blocks) / Math.max(calls, 1), 1),
          query: r.query.replace(/\s+/g, ' ').slice(0, 200),
        };
      });
    },
    close: () => sql.end({ timeout: 5 }),
  };
}
