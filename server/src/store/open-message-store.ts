import type { Config } from '../config.ts';
import type { Database } from '../db/database.ts';
import type { Logger } from '../observability/logger.ts';
import type { MessageStore } from './message-store.ts';
import { PostgresMessageStore } from './message-store.postgres.ts';

/** Picks the message store named by MESSAGE_STORE (explicitly, no driver-by-string magic elsewhere). */
export async function openMessageStore(config: Config, database: Database, logger: Logger): Promise<MessageStore> {
  if (config.MESSAGE_STORE === 'cassandra') {
    const { CassandraMessageStore } = await import('./message-store.cassandra.ts');
    const store = new CassandraMessageStore({
      contactPoints: config.CASSANDRA_CONTACT_POINTS!,
      localDataCenter: config.CASSANDRA_LOCAL_DC,
      keyspace: config.CASSANDRA_KEYSPACE,
      replicationFactor: config.CASSANDRA_REPLICATION_FACTOR,
      logger,
    });
    await store.init();
    return store;
  }
  const store = new PostgresMessageStore(database);
  await store.init();
  return store;
}
