import { loadConfig } from './config.ts';
import { openDatabase } from './db/database.ts';

/** `npm run db:migrate`: applies pending migrations (under the advisory lock) and exits. */
const config = loadConfig();
const database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR });
await database.migrate();
await database.close();
process.stdout.write(`migrations applied (${database.kind})\n`);
