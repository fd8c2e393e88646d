import type { Config } from '../config.ts';
import { openDatabase, type Database } from '../db/database.ts';
import type { Logger } from '../observability/logger.ts';
import type { MessageStore } from '../store/message-store.ts';
import { openMessageStore } from '../store/open-message-store.ts';

/** The relational database (migrated) and the message store the config names. */
export async function openStorage(config: Config, logger: Logger): Promise<{ database: Database; store: MessageStore }> {
  const database = await openDatabase({
    databaseUrl: config.DATABASE_URL,
    dataDir: config.DATA_DIR,
    poolMax: config.DATABASE_POOL_MAX,
  });
  await database.migrate();
  const store = await openMessageStore(config, database, logger);
  return { database, store };
}
