import { loadConfig } from '../config.ts';
import { DataDirLockedError } from '../db/data-dir-lock.ts';
import { openDatabase } from '../db/database.ts';

/**
 * `npm run db:migrate`: applies pending migrations (under the advisory lock) and exits. On the
 * embedded database a running hub has applied them already and holds the folder: refused, named.
 */
const config = loadConfig();
const database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR }).catch((err) => {
  if (!(err instanceof DataDirLockedError)) throw err;
  process.stderr.write(`db:migrate: ${err.message}\n`);
  process.exit(75);
});
await database.migrate();
await database.close();
process.stdout.write(`migrations applied (${database.kind})\n`);
