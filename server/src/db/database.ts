import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import * as schema from '../../../db/schema/index.ts';
import { lockDataDir, type DataDirLock } from './data-dir-lock.ts';

export { schema };

/** The drizzle handle the services use, whichever driver is behind it. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

/** The rows of a raw `db.execute`: postgres.js returns them as an array, PGlite as `{ rows }`. */
export const rowsOf = <T>(res: unknown): T[] => (Array.isArray(res) ? (res as T[]) : (res as { rows: T[] }).rows);

export interface Database {
  db: Db;
  kind: 'pglite' | 'postgres';
  /**
   * A raw parameterised statement for hot paths, prepared once per connection on PostgreSQL
   * (drizzle's `execute` is unprepared: postgres.js then spends a round trip describing the
   * parameters and the server plans every call). `text` must be a constant.
   */
  query<T>(text: string, params: unknown[]): Promise<T[]>;
  /** Runs pending migrations, one replica at a time (advisory lock). */
  migrate(): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export const migrationsFolder = fileURLToPath(new URL('../../../db/migrations', import.meta.url));

// Any 64-bit constant works; this one spells "hubbub" in ASCII.
const MIGRATION_LOCK = 0x687562627562n;

/**
 * PGlite's server settings (postgres `-c` options). Its defaults are a server's: 128 MB of
 * shared buffers, which PostgreSQL zeroes at start, so all of it is resident in the wasm heap
 * from the first second. 16 MB (2048 pages) holds the embedded default's working set; the files
 * stay in the OS page cache behind it. Durability is untouched (synchronous_commit stays on).
 */
const PGLITE_SETTINGS = ['-c', 'shared_buffers=16MB', '-c', 'max_connections=10'];

/**
 * A new data directory is initialised (initdb) in a throwaway process: PGlite runs initdb as a
 * second wasm module in the same process, and that heap (about 400 MB) stays resident after it
 * is done, for as long as the hub runs. In a child process it is returned to the OS when the
 * child exits. Runs once per DATA_DIR, on the first start (a few seconds, as initdb in-process).
 */
async function initPglite(dir: string) {
  if (existsSync(path.join(dir, 'PG_VERSION'))) return;
  const code = `const { PGlite } = await import(process.argv[1]); await (await PGlite.create(process.argv[2])).close();`;
  await new Promise<void>((resolve, reject) =>
    execFile(
      process.execPath,
      ['--input-type=module', '-e', code, import.meta.resolve('@electric-sql/pglite'), dir],
      (err, _out, stderr) => (err ? reject(new Error(`PGlite initdb in ${dir} failed: ${stderr || err.message}`)) : resolve()),
    ),
  );
}

/**
 * DATABASE_URL set: PostgreSQL through postgres.js. Unset: PGlite, file-backed under DATA_DIR,
 * so `npm start` needs no database server and the data survives a restart; the folder is locked
 * for this process (DataDirLockedError names the holder when another has it).
 */
export async function openDatabase(opts: {
  databaseUrl?: string;
  dataDir: string;
  poolMax?: number;
  /** PGlite in memory (tests). */
  memory?: boolean;
}): Promise<Database> {
  if (opts.databaseUrl) {
    const { default: postgres } = await import('postgres');
    const { drizzle } = await import('drizzle-orm/postgres-js');
    const { migrate } = await import('drizzle-orm/postgres-js/migrator');
    const client = postgres(opts.databaseUrl, { max: opts.poolMax ?? 10, onnotice: () => {}, idle_timeout: 30 });
    const db = drizzle(client, { schema }) as unknown as Db;
    return {
      db,
      kind: 'postgres',
      query: async <T>(text: string, params: unknown[]) =>
        (await client.unsafe(text, params as never[], { prepare: true })) as unknown as T[],
      async migrate() {
        // A single-connection client so the advisory lock and the migration share a session.
        const one = postgres(opts.databaseUrl!, { max: 1, onnotice: () => {} });
        try {
          await one`select pg_advisory_lock(${MIGRATION_LOCK.toString()}::bigint)`;
          await migrate(drizzle(one), { migrationsFolder });
        } finally {
          // Ignored: ending the session on the next line releases the advisory lock anyway.
          await one`select pg_advisory_unlock(${MIGRATION_LOCK.toString()}::bigint)`.catch(() => {});
          await one.end({ timeout: 5 });
        }
      },
      async ping() {
        await client`select 1`;
      },
      async close() {
        await client.end({ timeout: 5 });
      },
    };
  }
  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle } = await import('drizzle-orm/pglite');
  const { migrate } = await import('drizzle-orm/pglite/migrator');
  let lock: DataDirLock | undefined;
  const options = { startParams: [...PGlite.defaultStartParams, ...PGLITE_SETTINGS] };
  let pg: InstanceType<typeof PGlite>;
  if (opts.memory) pg = await PGlite.create(options);
  else {
    mkdirSync(opts.dataDir, { recursive: true });
    // Before anything touches the files, initdb included: a second process is refused here.
    lock = lockDataDir(opts.dataDir);
    try {
      const dir = path.resolve(opts.dataDir, 'pglite');
      mkdirSync(dir, { recursive: true });
      await initPglite(dir);
      pg = await PGlite.create(dir, options);
    } catch (err) {
      lock.release();
      throw err;
    }
  }
  const db = drizzle(pg, { schema }) as unknown as Db;
  return {
    db,
    kind: 'pglite',
    query: async <T>(text: string, params: unknown[]) => (await pg.query<T>(text, params)).rows,
    // The folder's lock keeps every other process out, so migrations need no lock of their own.
    migrate: () => migrate(drizzle(pg), { migrationsFolder }),
    async ping() {
      await db.execute(sql`select 1`);
    },
    async close() {
      try {
        await pg.close();
      } finally {
        lock?.release();
      }
    },
  };
}
