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

/** A store instance that dies: no more heartbeats or hand-overs, its leases left as they are. */
function crash(store: CassandraMessageStore) {
  const inner = store as unknown as { leases: { stopTimers(): void }; cql: { client: cassandra.Client } };
  inner.leases.stopTimers();
  void inner.cql.client.shutdown();
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
      assert.deepEqual(
        out.map((o) => o.status),
        ['fulfilled', 'rejected', 'fulfilled'],
      );
      assert.deepEqual(
        (await readAll(store, a)).map((e) => e.data.body),
        ['fine'],
      );
      assert.deepEqual(
        (await readAll(store, b)).map((e) => e.seq),
        [1],
        'nothing of the refused batch, and no seq taken',
      );
      assert.deepEqual(
        (await readAll(store, c)).map((e) => e.seq),
        [1, 2],
      );
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

  /** The seq each (from, cid) claim in cid_claims points at. */
  const claimSeqs = async (conv: string, from: string, cids: string[]) => {
    const rows = (
      await raw.execute('SELECT claim, seq FROM cid_claims WHERE claim IN ?', [cids.map((c) => `${conv}:${from}:${c}`)], { prepare: true })
    ).rows;
    const seqOf = new Map(rows.map((r) => [r.get('claim') as string, Number(r.get('seq'))]));
    return cids.map((c) => seqOf.get(`${conv}:${from}:${c}`));
  };

  test('the contract long log spans at least three buckets', () => {
    assert.ok(LONG_LOG_EVENTS > 2 * BUCKET_SIZE);
  });

  test('init applies each migration file once and is idempotent', async () => {
    await (await open()).init();
    const rows = (await raw.execute('SELECT name, applied_at FROM schema_migrations')).rows;
    assert.deepEqual(rows.map((r) => r.get('name')).sort(), [
      '001_init.cql',
      '002_conversation_cids.cql',
      '003_leases.cql',
      '004_log_epoch.cql',
    ]);
    const tables = (await raw.execute('SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?', [keyspace])).rows.map((r) =>
      r.get('table_name'),
    );
    assert.deepEqual(tables.sort(), [
      'cid_claims',
      'conversation_cids',
      'conversation_heads',
      'event_cids',
      'events',
      'lease_requests',
      'schema_migrations',
      'sender_messages',
      'store_instances',
    ]);
  });

  test('5.2 seqs allocated before leases and never written stay invisible, then the next append voids them', async () => {
    const store = await open({ takeoverMs: 1000 });
    const conv = randomUUID();
    // As a replica of the previous version left it: seq 1 durable, seqs 2..4 won by CAS, only 3 written.
    const first = draft();
    const orphan = draft({ data: { body: 'written before the crash' } });
    const insertEvent =
      'INSERT INTO events (conversation_id, bucket, seq, id, kind, sender_id, cid, ts, data) VALUES (?, 0, ?, ?, ?, ?, null, ?, ?)';
    for (const [seq, d] of [
      [1, first],
      [3, orphan],
    ] as const) {
      await raw.execute(insertEvent, [conv, seq, d.id, d.kind, d.from, new Date(d.ts), JSON.stringify(d.data)], { prepare: true });
    }
    await raw.execute('UPDATE conversation_heads USING TIMESTAMP 1 SET durable_seq = 1 WHERE conversation_id = ?', [conv], {
      prepare: true,
    });
    await raw.execute('UPDATE conversation_cids SET last_seq = 4 WHERE conversation_id = ?', [conv], { prepare: true });
    assert.deepEqual(
      (await readAll(store, conv)).map((e) => e.id),
      [first.id],
      'readers never see past the hole',
    );
    assert.equal((await store.lastSeqs([conv])).get(conv), 1);

    const started = Date.now();
    const [next] = await store.append(conv, [draft({ cid: 'after-crash' })]);
    assert.ok(Date.now() - started >= 900, 'waited for the stalled seqs first');
    assert.equal(next!.event.seq, 5);
    const events = await readAll(store, conv);
    assert.deepEqual(
      events.map((e) => [e.seq, e.kind]),
      [
        [1, 'message'],
        [2, 'system'],
        [3, 'message'],
        [4, 'system'],
        [5, 'message'],
      ],
    );
    assert.deepEqual(events[1]!.data, { void: true });
    assert.equal(events[1]!.from, null);
    assert.equal(events[2]!.id, orphan.id);
    assert.deepEqual(events[4], next!.event);
    assert.equal((await store.lastSeqs([conv])).get(conv), 5);
  });

  test('5.2 a lease holder that dies mid-append: the next instance takes over within takeoverMs, voids only the holes, keeps what was written', async () => {
    const a = await open({ takeoverMs: 1000 });
    const b = await open({ takeoverMs: 1000, handoverWaitMs: 10_000 });
    const conv = randomUUID();
    const from = randomUUID();
    const firsts = await a.append(conv, [draft({ from, cid: 'a1' }), draft({ from, cid: 'a2' })]);
    // A holds the lease with a range reserved; it wrote seq 4 of an append (events and claim) but
    // not seq 3, and died without publishing or releasing.
    const orphan = draft({ from, cid: 'orphan', data: { body: 'written before the crash' } });
    await raw.execute(
      'INSERT INTO events (conversation_id, bucket, seq, id, kind, sender_id, cid, ts, data) VALUES (?, 0, 4, ?, ?, ?, ?, ?, ?)',
      [conv, orphan.id, orphan.kind, orphan.from, orphan.cid, new Date(orphan.ts), JSON.stringify(orphan.data)],
      { prepare: true },
    );
    crash(a);
    assert.equal((await b.lastSeqs([conv])).get(conv), 2, 'nothing unpublished is visible');

    const started = Date.now();
    const [next] = await b.append(conv, [draft({ from, cid: 'b1' })]);
    const took = Date.now() - started;
    assert.ok(took < 5000, `took over in ${took} ms`);
    assert.equal(next!.event.seq, 5, 'the rest of the dead range is reused, not voided');
    const events = await readAll(b, conv);
    assert.deepEqual(
      events.map((e) => [e.seq, e.kind, e.data.void ?? false]),
      [
        [1, 'message', false],
        [2, 'message', false],
        [3, 'system', true],
        [4, 'message', false],
        [5, 'message', false],
      ],
    );
    assert.deepEqual(
      events.slice(0, 2),
      firsts.map((r) => r.event),
    );
    // The orphan's cid is a duplicate now (its claim is adopted), and so are A's.
    const again = await b.append(conv, [draft({ from, cid: 'orphan' }), draft({ from, cid: 'a2' }), draft({ from, cid: 'b2' })]);
    assert.deepEqual(
      again.map((r) => [r.event.seq, r.duplicate]),
      [
        [4, true],
        [2, true],
        [6, false],
      ],
    );
    assert.deepEqual(await b.seqsBySender(conv, from), [1, 2, 4, 5, 6]);
  });

  test('5.1 two instances appending to one conversation by turns: consecutive seqs, no void, each hand-over bounded', async () => {
    const a = await open();
    const b = await open();
    const conv = randomUUID();
    const from = randomUUID();
    const seqs: number[] = [];
    let slowest = 0;
    for (let i = 0; i < 40; i++) {
      const s = i % 2 ? b : a;
      const t0 = performance.now();
      const out = await s.append(conv, [draft({ from, cid: `t${i}` }), draft()]);
      slowest = Math.max(slowest, performance.now() - t0);
      seqs.push(...out.map((r) => r.event.seq));
      assert.ok(out.every((r) => !r.duplicate));
      // The other instance reads everything at once: nothing stalls behind an unused range.
      assert.equal((await (i % 2 ? a : b).lastSeqs([conv])).get(conv), 2 * i + 2);
    }
    assert.deepEqual(
      seqs,
      Array.from({ length: 80 }, (_, i) => i + 1),
    );
    const events = await readAll(a, conv);
    assert.deepEqual(
      events.map((e) => e.seq),
      seqs,
    );
    assert.ok(
      events.every((e) => e.kind === 'message'),
      'the unused rest of a range is given back, not voided',
    );
    assert.ok(slowest < 2000, `slowest append by turns: ${Math.round(slowest)} ms`);
    // Resends to the other instance are duplicates.
    const resent = await b.append(conv, [draft({ from, cid: 't0' }), draft({ from, cid: 't1' })]);
    assert.deepEqual(
      resent.map((r) => [r.event.seq, r.duplicate]),
      [
        [1, true],
        [3, true],
      ],
    );
  });

  test('5.4 a cid resent to the other instance while its first append is still writing: one event', async () => {
    const a = await open();
    const b = await open();
    const conv = randomUUID();
    const from = randomUUID();
    await a.append(conv, [draft()]);
    // A's next write hangs until released, so the resend reaches B while A's append is in flight.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const writing = new Promise<void>((r) => (entered = r));
    const inner = a as unknown as { writeEvents: (...args: unknown[]) => Promise<void> };
    const real = inner.writeEvents.bind(a);
    inner.writeEvents = async (...args: unknown[]) => {
      entered();
      await gate;
      return real(...args);
    };
    const first = a.append(conv, [draft({ from, cid: 'x' })]);
    await writing;
    const second = b.append(conv, [draft({ from, cid: 'x' })]);
    // B asks for the lease; A hands over only once its append is published.
    setTimeout(release, 200);
    const [[x], [y]] = await Promise.all([first, second]);
    assert.deepEqual([x!.duplicate, y!.duplicate], [false, true]);
    assert.deepEqual(y!.event, x!.event);
    assert.deepEqual(
      (await readAll(b, conv)).map((e) => e.seq),
      [1, 2],
    );
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
    assert.deepEqual(
      afterFailure.map((e) => [e.seq, e.kind, e.data]),
      [
        [1, 'message', { body: 'hello' }],
        [2, 'system', { void: true }],
        [3, 'system', { void: true }],
      ],
    );
    // The client retries with the same cid: a new message, not a duplicate of the void.
    const [retry] = await store.append(conv, [draft({ from, cid: 'lost' })]);
    assert.equal(retry!.duplicate, false);
    assert.equal(retry!.event.seq, 4);
    assert.deepEqual(await store.seqsBySender(conv, from), [1, 4]);
    assert.deepEqual((await store.lastMessages([conv])).get(conv), retry!.event);
  });

  test('5.4 an append that wrote its events but could not publish them fails; a retry of its cid returns them, stored once', async () => {
    const store = await open();
    const conv = randomUUID();
    const from = randomUUID();
    await store.append(conv, [draft()]);
    const log = (store as unknown as { log: { publishMany: (...a: unknown[]) => Promise<unknown[]> } }).log;
    const real = log.publishMany.bind(log);
    log.publishMany = async (pubs: unknown) => (pubs as unknown[]).map(() => new MessageStoreUnavailableError('simulated publish failure'));
    await assert.rejects(store.append(conv, [draft({ from, cid: 'unpublished' })]), MessageStoreUnavailableError);
    log.publishMany = real;
    const [retry] = await store.append(conv, [draft({ from, cid: 'unpublished' })]);
    assert.equal(retry!.duplicate, true);
    assert.equal(retry!.event.seq, 2);
    const events = await readAll(store, conv);
    assert.deepEqual(
      events.map((e) => [e.seq, e.cid ?? null]),
      [
        [1, null],
        [2, 'unpublished'],
      ],
    );
  });

  test('5.4 one append looks up the cids of many drafts, and stores the new ones around those already claimed', async () => {
    const store = await open();
    const conv = randomUUID();
    const from = randomUUID();
    const first = await store.append(conv, [draft({ from, cid: 'a' }), draft({ from, cid: 'c' })]);
    const out = await store.append(
      conv,
      ['a', 'b', 'c', 'd'].map((cid) => draft({ from, cid })),
    );
    assert.deepEqual(
      out.map((r) => r.duplicate),
      [true, false, true, false],
    );
    assert.deepEqual(
      [out[0]!.event, out[2]!.event],
      first.map((r) => r.event),
    );
    assert.deepEqual(
      out.map((r) => r.event.seq),
      [1, 3, 2, 4],
    );
    assert.deepEqual(await claimSeqs(conv, from, ['a', 'b', 'c', 'd']), [1, 3, 2, 4]);
  });

  test('5.4 an append of more than 100 keyed drafts looks their cids up in chunks', async () => {
    const store = await open();
    const conv = randomUUID();
    const from = randomUUID();
    const [pre] = await store.append(conv, [draft({ from, cid: 'k150' })]);
    const drafts = Array.from({ length: 250 }, (_, i) => draft({ from, cid: `k${i}` }));
    const out = await store.append(conv, drafts);
    assert.deepEqual(
      out.flatMap((r, i) => (r.duplicate ? [i] : [])),
      [150],
    );
    assert.deepEqual(out[150]!.event, pre!.event);
    assert.deepEqual(
      out.filter((r) => !r.duplicate).map((r) => r.event.seq),
      Array.from({ length: 249 }, (_, i) => i + 2),
    );
    const again = await store.append(
      conv,
      drafts.map((d) => ({ ...d, id: randomUUID() })),
    );
    assert.ok(again.every((r, i) => r.duplicate && r.event.id === out[i]!.event.id));
    assert.deepEqual(
      await claimSeqs(
        conv,
        from,
        drafts.map((d) => d.cid!),
      ),
      out.map((r) => r.event.seq),
    );
  });

  test('5.4 a cid claimed before migration 003 (a row of conversation_cids) is still a duplicate', async () => {
    const store = await open();
    const conv = randomUUID();
    const from = randomUUID();
    const [original] = await store.append(conv, [draft({ from, cid: 'old' })]);
    // As a version of migration 002 left it: the claim in conversation_cids, none in cid_claims.
    await raw.execute('DELETE FROM cid_claims WHERE claim = ?', [`${conv}:${from}:old`], { prepare: true });
    await raw.execute(
      'INSERT INTO conversation_cids (conversation_id, sender_id, cid, event_id, claimed_at, seq, seq_event_id) VALUES (?, ?, ?, ?, ?, ?, ?)',
      [conv, from, 'old', original!.event.id, new Date(), original!.event.seq, original!.event.id],
      { prepare: true },
    );
    const [again, fresh] = await (await open()).append(conv, [draft({ from, cid: 'old' }), draft({ from, cid: 'new' })]);
    assert.deepEqual([again!.duplicate, fresh!.duplicate], [true, false]);
    assert.deepEqual(again!.event, original!.event);
  });

  test('5.1 a conversation appended to before migration 002 continues from conversation_heads.last_seq', async () => {
    const store = await open();
    const conv = randomUUID();
    // As the previous version left it (durable_seq is written with the seq as its timestamp).
    await raw.execute(
      'INSERT INTO conversation_heads (conversation_id, last_seq, durable_seq) VALUES (?, 3, 3) USING TIMESTAMP 3',
      [conv],
      { prepare: true },
    );
    const [r] = await store.append(conv, [draft()]);
    assert.equal(r!.event.seq, 4);
    assert.equal((await store.lastSeqs([conv])).get(conv), 4);
  });

  test('5.9 rewind reports a conversation whose newest events below the restored head are missing, as a snapshot taken while hubs wrote leaves it', async () => {
    const store = await open();
    const [whole, torn] = [randomUUID(), randomUUID()];
    await store.append(whole, [draft(), draft()]);
    await store.append(torn, [draft(), draft(), draft()]);
    // `events` linked a moment before `conversation_heads`: the head names seq 3, its event is gone.
    await raw.execute('DELETE FROM events WHERE conversation_id = ? AND bucket = 0 AND seq = 3', [torn], { prepare: true });
    const r = await store.rewind([]);
    // Other tests of this keyspace leave heads over missing events too (a head row written by hand).
    assert.ok(r.incomplete?.includes(torn), 'the torn log is reported');
    assert.ok(!r.incomplete?.includes(whole), 'a whole log is not');
    const heads = await store.heads([whole, torn]);
    assert.deepEqual([heads.get(whole)!.restoredSeq, heads.get(torn)!.restoredSeq], [2, 3]);
  });

  // Last: once event_cids holds a row, stores opened on this keyspace consult it.
  test('5.4 a cid stored before migration 002 (in event_cids) is still a duplicate', async () => {
    const conv = randomUUID();
    const from = randomUUID();
    const [original] = await (await open()).append(conv, [draft({ from, cid: 'old' })]);
    // As a version before migration 002 left it: the claim in event_cids only.
    await raw.execute('DELETE FROM cid_claims WHERE claim = ?', [`${conv}:${from}:old`], { prepare: true });
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
    assert.deepEqual(third!.event, original!.event);
    assert.deepEqual(
      (await readAll(store, conv)).map((e) => e.seq),
      [1, 2],
    );
  });
});
