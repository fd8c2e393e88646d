/**
 * Runs the MessageStore contract on PGlite (in memory), PostgreSQL and Cassandra, plus the
 * Cassandra store's own failure paths (holes of a crashed appender, failed writes, stale cid
 * claims, migrations).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import cassandra from 'cassandra-driver';
import { pino } from 'pino';
import { openDatabase, type Database } from '../../server/src/db/database.ts';
import {
  BUCKET_SIZE,
  CassandraMessageStore,
  MessageStoreUnavailableError,
  type CassandraMessageStoreOptions,
} from '../../server/src/store/message-store.cassandra.ts';
import { PostgresMessageStore } from '../../server/src/store/message-store.postgres.ts';
import { services } from '../helpers/env.ts';
import { createDatabase } from '../helpers/postgres.ts';
import { draft, LONG_LOG_EVENTS, readAll, registerMessageStoreContract } from './message-store.contract.ts';

// Warnings and errors only, on stderr: the test runner reads stdout.
const logger = pino({ level: 'warn' }, pino.destination(2));
const newKeyspace = () => 't_' + randomUUID().replaceAll('-', '').slice(0, 20);

function cassandraStore(keyspace: string, over: Partial<CassandraMessageStoreOptions> = {}) {
  return new CassandraMessageStore({
    contactPoints: services.cassandraContactPoints(),
    localDataCenter: services.cassandraLocalDc(),
    keyspace,
    replicationFactor: 1,
    logger,
    ...over,
  });
}

/** A plain driver client for a keyspace: to look behind the store's back and to drop the keyspace. */
function rawClient(keyspace?: string) {
  return new cassandra.Client({ contactPoints: services.cassandraContactPoints(), localDataCenter: services.cassandraLocalDc(), keyspace });
}

async function dropKeyspace(keyspace: string) {
  const c = rawClient();
  try {
    await c.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
  } finally {
    await c.shutdown();
  }
}

registerMessageStoreContract('PGlite (in memory)', async () => {
  const database = await openDatabase({ dataDir: 'unused', memory: true });
  await database.migrate();
  return {
    store: new PostgresMessageStore(database),
    // One embedded database per process: a second store shares the handle.
    second: async () => new PostgresMessageStore(database),
    cleanup: () => database.close(),
  };
});

registerMessageStoreContract('PostgreSQL', async () => {
  const url = await createDatabase(services.databaseUrl());
  const handles: Database[] = [await openDatabase({ databaseUrl: url, dataDir: 'unused' })];
  await handles[0]!.migrate();
  return {
    store: new PostgresMessageStore(handles[0]!),
    second: async () => {
      const h = await openDatabase({ databaseUrl: url, dataDir: 'unused' });
      handles.push(h);
      return new PostgresMessageStore(h);
    },
    cleanup: async () => {
      await Promise.all(handles.map((h) => h.close()));
    },
  };
});

describe('PostgreSQL message store: appendMany', () => {
  test('5.1 a batch PostgreSQL refuses fails alone; the other conversations of the same write are stored', async () => {
    const url = await createDatabase(services.databaseUrl());
    const h = await openDatabase({ databaseUrl: url, dataDir: 'unused' });
    try {
      await h.migrate();
      const store = new PostgresMessageStore(h);
      const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
      await store.append(b, [draft()]);
      // jsonb cannot hold NUL: the protocol refuses it, this is the store's own guard.
      const out = await store.appendMany([
        { conv: a, drafts: [draft({ data: { body: 'fine' } })] },
        { conv: b, drafts: [draft({ data: { body: 'nul \u0000 inside' } })] },
        { conv: c, drafts: [draft({ data: { body: 'also fine' } }), draft()] },
      ]);
      assert.deepEqual(out.map((o) => o.status), ['fulfilled', 'rejected', 'fulfilled']);
      assert.deepEqual((await readAll(store, a)).map((e) => e.data.body), ['fine']);
      assert.deepEqual((await readAll(store, b)).map((e) => e.seq), [1], 'nothing of the refused batch, and no seq taken');
      assert.deepEqual((await readAll(store, c)).map((e) => e.seq), [1, 2]);
      assert.equal((await store.lastSeqs([b])).get(b), 1);
    } finally {
      await h.close();
    }
  });
});

registerMessageStoreContract('Cassandra', async () => {
  const keyspace = newKeyspace();
  const stores = [cassandraStore(keyspace)];
  await stores[0]!.init();
  return {
    store: stores[0]!,
    second: async () => {
      const s = cassandraStore(keyspace);
      stores.push(s);
      await s.init();
      return s;
    },
    cleanup: async () => {
      await Promise.all(stores.map((s) => s.close()));
      await dropKeyspace(keyspace);
    },
  };
});

describe('Cassandra message store internals', () => {
  const keyspace = newKeyspace();
  const opened: CassandraMessageStore[] = [];
  let raw: cassandra.Client;
  const open = async (over: Partial<CassandraMessageStoreOptions> = {}) => {
    const s = cassandraStore(keyspace, over);
    opened.push(s);
    await s.init();
    return s;
  };

  before(async () => {
    // Two replicas starting at once on a fresh keyspace: the migration lock lets one apply.
    await Promise.all([open(), open()]);
    raw = rawClient(keyspace);
  });
  after(async () => {
    await raw?.shutdown();
    await Promise.all(opened.map((s) => s.close()));
    await dropKeyspace(keyspace);
  });

  test('the contract long log spans at least three buckets', () => {
    assert.ok(LONG_LOG_EVENTS > 2 * BUCKET_SIZE);
  });

  test('init applies each migration file once and is idempotent', async () => {
    await (await open()).init();
    const rows = (await raw.execute('SELECT name, applied_at FROM schema_migrations')).rows;
    assert.deepEqual(rows.map((r) => r.get('name')).sort(), ['001_init.cql', '002_conversation_cids.cql']);
    const tables = (await raw.execute('SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?', [keyspace])).rows.map((r) => r.get('table_name'));
    assert.deepEqual(tables.sort(), ['conversation_cids', 'conversation_heads', 'event_cids', 'events', 'schema_migrations', 'sender_messages']);
  });

  test('5.2 seqs of a crashed appender stay invisible, then the next append voids the unwritten ones', async () => {
    const store = await open({ takeoverMs: 1000 });
    const conv = randomUUID();
    const [first] = await store.append(conv, [draft()]);
    // A replica wins seqs 2..4 by CAS, writes only seq 3, and dies.
    assert.ok((await raw.execute('UPDATE conversation_cids SET last_seq = 4 WHERE conversation_id = ? IF last_seq = 1', [conv], { prepare: true })).wasApplied());
    const orphan = draft({ data: { body: 'written before the crash' } });
    await raw.execute(
      'INSERT INTO events (conversation_id, bucket, seq, id, kind, sender_id, cid, ts, data) VALUES (?, 0, 3, ?, ?, ?, null, ?, ?)',
      [conv, orphan.id, orphan.kind, orphan.from, new Date(orphan.ts), JSON.stringify(orphan.data)],
      { prepare: true },
    );
    assert.deepEqual(await readAll(store, conv), [first!.event], 'readers never see past the hole');
    assert.equal((await store.lastSeqs([conv])).get(conv), 1);

    const started = Date.now();
    const [next] = await (await open({ takeoverMs: 1000 })).append(conv, [draft({ cid: 'after-crash' })]);
    assert.ok(Date.now() - started >= 900, 'waited for the stalled seqs first');
    assert.equal(next!.event.seq, 5);
    const events = await readAll(store, conv);
    assert.deepEqual(events.map((e) => [e.seq, e.kind]), [[1, 'message'], [2, 'system'], [3, 'message'], [4, 'system'], [5, 'message']]);
    assert.deepEqual(events[1]!.data, { void: true });
    assert.equal(events[1]!.from, null);
    assert.equal(events[2]!.id, orphan.id);
    assert.deepEqual(events[4], next!.event);
    assert.equal((await store.lastSeqs([conv])).get(conv), 5);
  });

  test('5.2 an append whose writes keep failing voids its seqs, throws, and frees its cids', async () => {
    const store = await open();
    const conv = randomUUID();
    const from = randomUUID();
    await store.append(conv, [draft({ from })]);
    const failing = await open();
    (failing as unknown as { writeEvents: () => Promise<void> }).writeEvents = async () => {
      throw new Error('simulated write failure');
    };
    await assert.rejects(failing.append(conv, [draft({ from, cid: 'lost' }), draft({ from })]), MessageStoreUnavailableError);
    const afterFailure = await readAll(store, conv);
    assert.deepEqual(afterFailure.map((e) => [e.seq, e.kind, e.data]), [[1, 'message', { body: 'hello' }], [2, 'system', { void: true }], [3, 'system', { void: true }]]);
    // The client retries with the same cid: a new message, not a duplicate of the void.
    const [retry] = await store.append(conv, [draft({ from, cid: 'lost' })]);
    assert.equal(retry!.duplicate, false);
    assert.equal(retry!.event.seq, 4);
    assert.deepEqual(await store.seqsBySender(conv, from), [1, 4]);
    assert.deepEqual((await store.lastMessages([conv])).get(conv), retry!.event);
  });

  test('5.4 a cid claim whose holder is alive makes a retry wait, then fail; a stale one is taken over', async () => {
    const store = await open({ claimWaitMs: 300, claimStaleMs: 60_000 });
    const conv = randomUUID();
    const from = randomUUID();
    const claim = 'INSERT INTO conversation_cids (conversation_id, sender_id, cid, event_id, claimed_at) VALUES (?, ?, ?, ?, ?)';
    await raw.execute(claim, [conv, from, 'busy', randomUUID(), new Date()], { prepare: true });
    await assert.rejects(store.append(conv, [draft({ from, cid: 'busy' })]), MessageStoreUnavailableError);
    assert.equal((await store.lastSeqs([conv])).get(conv), 0, 'nothing allocated');

    await raw.execute(claim, [conv, from, 'orphan', randomUUID(), new Date(Date.now() - 120_000)], { prepare: true });
    const [r] = await store.append(conv, [draft({ from, cid: 'orphan' })]);
    assert.equal(r!.duplicate, false);
    assert.equal(r!.event.seq, 1);
    const [again] = await store.append(conv, [draft({ from, cid: 'orphan' })]);
    assert.equal(again!.duplicate, true);
    assert.deepEqual(again!.event, r!.event);
  });

  test('5.2 an append that wrote events waits out a held cid instead of failing', async () => {
    const store = await open({ claimWaitMs: 100, claimStaleMs: 1500 });
    const conv = randomUUID();
    const from = randomUUID();
    await raw.execute(
      'INSERT INTO conversation_cids (conversation_id, sender_id, cid, event_id, claimed_at) VALUES (?, ?, ?, ?, ?)',
      [conv, from, 'held', randomUUID(), new Date()],
      { prepare: true },
    );
    const started = Date.now();
    const [a, b] = await store.append(conv, [draft(), draft({ from, cid: 'held' })]);
    assert.ok(Date.now() - started >= 1000, 'waited for the claim to go stale');
    assert.deepEqual([a!.duplicate, b!.duplicate], [false, false]);
    assert.deepEqual([a!.event.seq, b!.event.seq], [1, 2], 'the taken-over draft is appended after the others');
    assert.deepEqual(await readAll(store, conv), [a!.event, b!.event]);
  });

  test('5.4 one append claims the cids of many drafts in one conditional batch, around cids already claimed', async () => {
    const store = await open({ claimWaitMs: 100, claimStaleMs: 60_000 });
    const conv = randomUUID();
    const from = randomUUID();
    const first = await store.append(conv, [draft({ from, cid: 'a' }), draft({ from, cid: 'c' })]);
    const out = await store.append(conv, ['a', 'b', 'c', 'd'].map((cid) => draft({ from, cid })));
    assert.deepEqual(out.map((r) => r.duplicate), [true, false, true, false]);
    assert.deepEqual([out[0]!.event, out[2]!.event], first.map((r) => r.event));
    assert.deepEqual(out.map((r) => r.event.seq), [1, 3, 2, 4]);
    const rows = (await raw.execute('SELECT cid, seq FROM conversation_cids WHERE conversation_id = ?', [conv], { prepare: true })).rows;
    assert.deepEqual(rows.map((r) => [r.get('cid'), Number(r.get('seq'))]).sort(), [['a', 1], ['b', 3], ['c', 2], ['d', 4]]);
  });

  test('5.4 an append of more than 100 keyed drafts claims their cids in chunks, then allocates', async () => {
    const store = await open();
    const conv = randomUUID();
    const from = randomUUID();
    const [pre] = await store.append(conv, [draft({ from, cid: 'k150' })]);
    const drafts = Array.from({ length: 250 }, (_, i) => draft({ from, cid: `k${i}` }));
    const out = await store.append(conv, drafts);
    assert.deepEqual(out.flatMap((r, i) => (r.duplicate ? [i] : [])), [150]);
    assert.deepEqual(out[150]!.event, pre!.event);
    assert.deepEqual(out.filter((r) => !r.duplicate).map((r) => r.event.seq), Array.from({ length: 249 }, (_, i) => i + 2));
    const again = await store.append(conv, drafts.map((d) => ({ ...d, id: randomUUID() })));
    assert.ok(again.every((r, i) => r.duplicate && r.event.id === out[i]!.event.id));
    const rows = (await raw.execute('SELECT cid, seq FROM conversation_cids WHERE conversation_id = ?', [conv], { prepare: true, fetchSize: 1000 })).rows;
    const seqOf = new Map(rows.map((r) => [r.get('cid') as string, Number(r.get('seq'))]));
    assert.equal(seqOf.size, 250);
    out.forEach((r, i) => assert.equal(seqOf.get(`k${i}`), r.event.seq));
  });

  test('5.1 a conversation appended to before migration 002 continues from conversation_heads.last_seq', async () => {
    const store = await open();
    const conv = randomUUID();
    // As the previous version left it (durable_seq is written with the seq as its timestamp).
    await raw.execute('INSERT INTO conversation_heads (conversation_id, last_seq, durable_seq) VALUES (?, 3, 3) USING TIMESTAMP 3', [conv], { prepare: true });
    const [r] = await store.append(conv, [draft()]);
    assert.equal(r!.event.seq, 4);
    assert.equal((await store.lastSeqs([conv])).get(conv), 4);
  });

  // Last: once event_cids holds a row, stores opened on this keyspace consult it.
  test('5.4 a cid stored before migration 002 (in event_cids) is still a duplicate', async () => {
    const conv = randomUUID();
    const from = randomUUID();
    const [original] = await (await open()).append(conv, [draft({ from, cid: 'old' })]);
    // As the previous version left it: the claim in event_cids, none in conversation_cids.
    await raw.execute('DELETE FROM conversation_cids WHERE conversation_id = ? AND sender_id = ? AND cid = ?', [conv, from, 'old'], { prepare: true });
    await raw.execute(
      'INSERT INTO event_cids (conversation_id, sender_id, cid, event_id, claimed_at, seq, seq_event_id) VALUES (?, ?, ?, ?, ?, ?, ?)',
      [conv, from, 'old', original!.event.id, new Date(), original!.event.seq, original!.event.id],
      { prepare: true },
    );
    const store = await open();
    const [again] = await store.append(conv, [draft({ from, cid: 'old' })]);
    assert.equal(again!.duplicate, true);
    assert.deepEqual(again!.event, original!.event);
    const [third] = await store.append(conv, [draft({ from, cid: 'old' }), draft({ from, cid: 'new' })]);
    assert.deepEqual(third!.event, original!.event, 'the adopted claim answers without event_cids too');
    assert.deepEqual((await readAll(store, conv)).map((e) => e.seq), [1, 2]);
  });
});
