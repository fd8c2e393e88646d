import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import cassandra from 'cassandra-driver';
import type { Logger } from '../../observability/logger.ts';
import { type Cql, sleep } from './cql.ts';
import { MessageStoreUnavailableError } from './errors.ts';

export const cassandraMigrationsFolder = fileURLToPath(new URL('../../../../db/cassandra', import.meta.url));

export interface MigrateOptions {
  contactPoints: string[];
  localDataCenter: string;
  keyspace: string;
  replicationFactor: number;
  logger: Logger;
}

/** Splits a .cql file into statements: `;` at line end separates them, `--` lines are comments. */
function statementsOf(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => !l.trim().startsWith('--'))
    .join('\n')
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Creates the keyspace, then applies each db/cassandra/*.cql file once, in name order, through
 * `cql` (a client bound to the keyspace; connected here).
 */
export async function migrate(cql: Cql, opts: MigrateOptions): Promise<void> {
  const { keyspace, replicationFactor, logger } = opts;
  const boot = new cassandra.Client({ contactPoints: opts.contactPoints, localDataCenter: opts.localDataCenter });
  try {
    await boot.execute(
      `CREATE KEYSPACE IF NOT EXISTS ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': ${replicationFactor}}`,
    );
  } finally {
    await boot.shutdown();
  }
  await cql.client.connect();
  await cql.client.execute('CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamp, owner uuid)', [], {
    prepare: false,
  });
  const files = (await readdir(cassandraMigrationsFolder)).filter((f) => f.endsWith('.cql')).sort();
  const pending = async () => {
    const done = new Set((await cql.all('SELECT name FROM schema_migrations', [])).map((r) => r.get('name') as string));
    return files.filter((f) => !done.has(f));
  };
  if (!(await pending()).length) return;
  // Replicas starting together must not run DDL concurrently (Cassandra 5.0 can then end up
  // with two ids for one table), so one takes a lock row; its TTL frees it if that one dies.
  const owner = cassandra.types.Uuid.random().toString();
  const deadline = Date.now() + 120_000;
  while (
    !(
      await cql.q(`INSERT INTO schema_migrations (name, applied_at, owner) VALUES ('~lock', ?, ?) IF NOT EXISTS USING TTL 60`, [
        new Date(),
        owner,
      ])
    ).wasApplied()
  ) {
    if (Date.now() > deadline) throw new MessageStoreUnavailableError('timed out waiting for the Cassandra migration lock');
    await sleep(200);
  }
  try {
    for (const file of await pending()) {
      const text = await readFile(path.join(cassandraMigrationsFolder, file), 'utf8');
      for (const s of statementsOf(text)) await cql.client.execute(s, [], { prepare: false });
      await cql.q('INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)', [file, new Date()]);
      logger.info({ file, keyspace }, 'applied Cassandra migration');
    }
  } finally {
    // Failing that, the lock row's TTL frees it within a minute.
    await cql
      .q(`DELETE FROM schema_migrations WHERE name = '~lock' IF owner = ?`, [owner])
      .catch((err: Error) => logger.warn({ err: err.message, keyspace }, 'releasing the Cassandra migration lock failed'));
  }
}
