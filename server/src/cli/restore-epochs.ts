import { loadConfig } from '../config.ts';
import { DataDirLockedError } from '../db/data-dir-lock.ts';
import { openDatabase } from '../db/database.ts';
import { createLogger } from '../observability/logger.ts';
import { openMessageStore } from '../store/open-message-store.ts';

/**
 * `npm run restore:epochs`: the step after restoring the message log from a backup, before the
 * hubs start again: every conversation's log gets a new epoch, so that clients holding positions
 * from before the restore are told their position is void instead of being served reissued seqs
 * (docs/backups.md). Applies pending migrations first (a backup from an older release lacks the
 * epoch column). On the embedded database the hub must be stopped (it holds DATA_DIR). With
 * MESSAGE_STORE=cassandra the conversations come from PostgreSQL (restored to the same moment),
 * so that one whose log the snapshot does not hold gets an epoch too.
 */
const config = loadConfig();
const logger = createLogger({ level: config.LOG_LEVEL, replicaId: `restore-epochs-${process.pid}`, name: 'restore-epochs' });
const database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR }).catch((err) => {
  if (!(err instanceof DataDirLockedError)) throw err;
  process.stderr.write(`restore:epochs: ${err.message}\nStop the hub first: the epochs change while no hub serves the log.\n`);
  process.exit(75);
});
try {
  await database.migrate();
  const store = await openMessageStore(config, database, logger);
  try {
    const convs = (await database.query<{ id: string }>('select id from conversations', [])).map((r) => r.id);
    const r = await store.rewind(convs);
    process.stdout.write(
      `new log epoch for ${r.conversations} conversations (${config.MESSAGE_STORE}, ${database.kind}; epoch ${r.epoch} or one above the old)\n`,
    );
    if (r.incomplete?.length) {
      process.stderr.write(
        `restore:epochs: ${r.incomplete.length} conversations lack events just below their restored head (a snapshot taken while hubs wrote; docs/backups.md): ${r.incomplete.slice(0, 20).join(', ')}${r.incomplete.length > 20 ? ', …' : ''}\n`,
      );
      process.exitCode = 3;
    }
  } finally {
    await store.close();
  }
} finally {
  await database.close();
}
