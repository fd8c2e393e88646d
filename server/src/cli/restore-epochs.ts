import { loadConfig } from '../config.ts';
import { DataDirLockedError } from '../db/data-dir-lock.ts';
import { openDatabase } from '../db/database.ts';
import { rewindLogs } from '../store/log-rewind.ts';

/**
 * `npm run restore:epochs`: the step after restoring the database from a backup, before the hubs
 * start again: every conversation's log gets a new epoch, so that clients holding positions from
 * before the restore are told their position is void instead of being served reissued seqs
 * (docs/backups.md). Applies pending migrations first (a backup from an older release lacks the
 * epoch column). On the embedded database the hub must be stopped (it holds DATA_DIR).
 */
const config = loadConfig();
if (config.MESSAGE_STORE !== 'postgres') {
  process.stderr.write('restore:epochs: the Cassandra message store keeps no epochs; see docs/backups.md\n');
  process.exit(2);
}
const database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR }).catch((err) => {
  if (!(err instanceof DataDirLockedError)) throw err;
  process.stderr.write(`restore:epochs: ${err.message}\nStop the hub first: the epochs change while no hub serves the log.\n`);
  process.exit(75);
});
try {
  await database.migrate();
  const r = await rewindLogs(database);
  process.stdout.write(`new log epoch for ${r.conversations} conversations (${database.kind}; epoch ${r.epoch} or one above the old)\n`);
} finally {
  await database.close();
}
