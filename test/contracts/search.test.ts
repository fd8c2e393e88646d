/**
 * Runs the message search contract on PGlite (in memory) and PostgreSQL, then checks that both
 * returned the same set of hits for every query of the shared corpus.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { openDatabase, type Database } from '../../server/src/db/database.ts';
import { PostgresMessageSearch } from '../../server/src/search/message-search.postgres.ts';
import { PostgresSearchIndexer } from '../../server/src/search/search-indexer.postgres.ts';
import { PostgresMessageStore } from '../../server/src/store/message-store.postgres.ts';
import { services } from '../helpers/env.ts';
import { createDatabase } from '../helpers/postgres.ts';
import { corpusHits, registerSearchContract, type SearchFixture } from './search.contract.ts';

const logger = pino({ level: 'warn' }, pino.destination(2));

function fixture(handles: Database[], more: () => Promise<Database>): SearchFixture {
  const [database] = handles;
  const indexerOn = (d: Database, delayMs = 10) => new PostgresSearchIndexer({ db: d.db, logger, language: 'simple', delayMs, sweepMs: 0 });
  const indexers = [indexerOn(database!)];
  return {
    db: database!.db,
    store: new PostgresMessageStore(database!),
    search: new PostgresMessageSearch({ db: database!.db, language: 'simple' }),
    indexer: indexers[0]!,
    async secondIndexer(opts = {}) {
      const i = indexerOn(await more(), opts.delayMs);
      indexers.push(i);
      return i;
    },
    async cleanup() {
      await Promise.all(indexers.map((i) => i.close()));
      await Promise.all(handles.map((h) => h.close()));
    },
  };
}

registerSearchContract('PGlite (in memory)', async () => {
  const database = await openDatabase({ dataDir: 'unused', memory: true });
  await database.migrate();
  // One embedded database per process: the second indexer shares the handle.
  return fixture([database], async () => database);
});

registerSearchContract('PostgreSQL', async () => {
  const url = await createDatabase(services.databaseUrl());
  const handles = [await openDatabase({ databaseUrl: url, dataDir: 'unused' })];
  await handles[0]!.migrate();
  return fixture(handles, async () => {
    const h = await openDatabase({ databaseUrl: url, dataDir: 'unused' });
    handles.push(h);
    return h;
  });
});

test('11 every store returns the same set of hits for every query of the shared corpus', () => {
  const [pglite, postgres] = [corpusHits.get('PGlite (in memory)'), corpusHits.get('PostgreSQL')];
  assert.ok(pglite && postgres, 'both stores ran the corpus');
  assert.ok(pglite.size >= 18);
  const rows = (m: Map<string, string[]>) => [...m].map(([q, hits]) => `${q} => ${hits.join(',')}`).sort();
  assert.deepEqual(rows(postgres), rows(pglite));
});
