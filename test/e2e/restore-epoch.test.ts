import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import postgres from 'postgres';
import WebSocket from 'ws';
import { SocketClient, type RewoundEvent, type WebSocketCtor } from '@hubbub/client';
import { openDatabase } from '../../server/src/db/database.ts';
import type { Replica } from '../../server/src/replica.ts';
import { rewindLogs } from '../../server/src/store/log-rewind.ts';
import { newUser, startTestReplica, testEnv, trpcClient } from '../helpers/server.ts';
import { connect } from '../helpers/ws.ts';

/**
 * A rewind of the message log, as a restore from backup makes it: the log loses its events after
 * the recovery point, `restore:epochs` gives it a new epoch, and the seqs after the point are
 * issued again with other content. Emulated here by deleting those events on PostgreSQL (the
 * restore itself is drilled in restore-drill.test.ts).
 */
async function rewindTo(databaseUrl: string, conv: string, point: number) {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => undefined });
  try {
    await sql`delete from log_events where conversation_id = ${conv} and seq > ${point}`;
    await sql`update log_heads set last_seq = ${point} where conversation_id = ${conv}`;
  } finally {
    await sql.end();
  }
  const database = await openDatabase({ databaseUrl, dataDir: '' });
  try {
    return await rewindLogs(database);
  } finally {
    await database.close();
  }
}

describe('5.9 restore:epochs', () => {
  for (const kind of ['pglite', 'postgres'] as const) {
    test(`5.9 every log gets a higher epoch and its head as restoredSeq, even twice in one second; a conversation with no events gets a head row (${kind})`, async () => {
      const env = await testEnv(kind);
      try {
        const replica = await startTestReplica(env.env);
        const a = await newUser(replica.port, 'rw');
        const b = await newUser(replica.port, 'rw');
        const busy = (await a.client.conversations.createGroup.mutate({ title: 'busy', memberIds: [b.id] })).id;
        const quiet = (await a.client.conversations.createGroup.mutate({ title: 'quiet', memberIds: [b.id] })).id;
        const s = await connect(replica.port, a.accessToken);
        const ack = await s.c.request({ type: 'send', conv: busy, cid: 'x', body: 'x' });
        s.c.close();
        await replica.stop();
        const database = await openDatabase({ databaseUrl: env.env.DATABASE_URL, dataDir: env.env.DATA_DIR ?? '' });
        try {
          const { PostgresMessageStore } = await import('../../server/src/store/message-store.postgres.ts');
          const store = new PostgresMessageStore(database);
          // A restore to before the conversation's first event: the conversation exists, its log does not.
          await database.query('delete from log_events where conversation_id = $1', [quiet]);
          await database.query('delete from log_heads where conversation_id = $1', [quiet]);
          const before = await store.heads([busy, quiet]);
          const now = Date.now();
          await rewindLogs(database, now);
          const first = await store.heads([busy, quiet]);
          await rewindLogs(database, now);
          const second = await store.heads([busy, quiet]);
          assert.equal(before.get(busy)!.epoch, 1);
          assert.deepEqual(first.get(busy), { seq: ack.seq, epoch: Math.floor(now / 1000), restoredSeq: ack.seq });
          assert.deepEqual(first.get(quiet), { seq: 0, epoch: Math.floor(now / 1000), restoredSeq: 0 });
          assert.equal(second.get(busy)!.epoch, first.get(busy)!.epoch + 1, 'a second rewind in the same second still moves forward');
          assert.equal(second.get(quiet)!.epoch, first.get(quiet)!.epoch + 1);
        } finally {
          await database.close();
        }
      } finally {
        await env.cleanup();
      }
    });
  }
});

describe('5.9 log epochs (PostgreSQL)', () => {
  test('5.9 a resume with an old epoch is answered `rewound` and replayed from seq 1: a reissued seq is never taken for one already seen', async () => {
    const env = await testEnv('postgres');
    let replica: Replica = await startTestReplica(env.env);
    try {
      const a = await newUser(replica.port, 'ep');
      const b = await newUser(replica.port, 'ep');
      const conv = (await a.client.conversations.createGroup.mutate({ title: 'epochs', memberIds: [b.id] })).id;
      const sa = await connect(replica.port, a.accessToken);
      const sb = await connect(replica.port, b.accessToken);
      assert.equal(sb.ready.epochs[conv], 1, 'a log never rewound is in epoch 1');
      const acks = [];
      for (let i = 1; i <= 5; i++) acks.push(await sa.c.request({ type: 'send', conv, cid: `old-${i}`, body: `old ${i}` }));
      const last = acks.at(-1)!.seq as number;
      await sb.c.wait((f) => f.type === 'event' && f.seq === last);
      sa.c.close();
      sb.c.close();
      await replica.stop();

      const point = acks[1]!.seq as number;
      const rewind = await rewindTo(env.env.DATABASE_URL!, conv, point);
      replica = await startTestReplica(env.env);
      const sa2 = await connect(replica.port, a.accessToken);
      const epoch = sa2.ready.epochs[conv] as number;
      assert.ok(epoch > 1 && epoch >= rewind.epoch, `new epoch ${epoch}`);
      // The seqs after the point are issued again, with other content.
      const fresh = [];
      for (let i = 1; i <= 3; i++) fresh.push(await sa2.c.request({ type: 'send', conv, cid: `new-${i}`, body: `new ${i}` }));
      assert.deepEqual(
        fresh.map((f) => f.seq),
        [point + 1, point + 2, point + 3],
      );
      assert.equal(point + 3, last, 'the new events reuse seqs the client has seen');

      // b comes back with its position from before the restore.
      const sb2 = await connect(replica.port, b.accessToken, { resume: false });
      sb2.c.send({ type: 'resume', ref: 'back', convs: { [conv]: last }, epochs: { [conv]: 1 } });
      const resumed = await sb2.c.wait((f) => f.type === 'resumed' && f.ref === 'back');
      const rewound = sb2.c.frames.filter((f) => f.type === 'rewound');
      assert.deepEqual(rewound, [{ type: 'rewound', ref: 'back', conv, epoch, seq: point + 3, restoredSeq: point }]);
      const at = sb2.c.frames.indexOf(rewound[0]!);
      const after = sb2.c.frames.slice(at).filter((f) => f.type === 'event' && f.conv === conv);
      // Every event of the current log, in order, once: the reissued seqs with their new bodies.
      assert.deepEqual(
        after.map((f) => f.seq),
        Array.from({ length: point + 3 }, (_, i) => i + 1),
      );
      assert.deepEqual(
        after.filter((f) => f.seq > point).map((f) => f.body),
        ['new 1', 'new 2', 'new 3'],
      );
      assert.equal(resumed.convs[conv], point + 3);
      assert.equal(resumed.epochs[conv], epoch);

      // A resume in the current epoch is served as ever: nothing replayed.
      const sb3 = await connect(replica.port, b.accessToken, { resume: false });
      sb3.c.send({ type: 'resume', ref: 'same', convs: { [conv]: point + 3 }, epochs: { [conv]: epoch } });
      await sb3.c.wait((f) => f.type === 'resumed' && f.ref === 'same');
      assert.deepEqual(
        sb3.c.frames.filter((f) => f.type === 'rewound' || (f.type === 'event' && f.conv === conv)),
        [],
      );
      // A position from a newer epoch (a timeline a later restore discarded) is void too.
      sb3.c.send({ type: 'resume', ref: 'future', convs: { [conv]: point + 3 }, epochs: { [conv]: epoch + 1 } });
      const r3 = await sb3.c.wait((f) => f.type === 'rewound' && f.ref === 'future');
      assert.equal(r3.epoch, epoch);
      for (const s of [sa2, sb2, sb3]) s.c.close();
    } finally {
      await replica.stop();
      await env.cleanup();
    }
  });

  test('5.9 the SDK: a restore since its position makes it report `rewound` with its lost acks, replay the log, and send its outbox once', async () => {
    const env = await testEnv('postgres');
    let replica: Replica = await startTestReplica(env.env);
    let sdk: SocketClient | undefined;
    try {
      const a = await newUser(replica.port, 'sdk');
      const b = await newUser(replica.port, 'sdk');
      const conv = (await a.client.conversations.createGroup.mutate({ title: 'sdk epochs', memberIds: [b.id] })).id;
      let port = replica.port;
      const client = new SocketClient({
        url: () => `ws://127.0.0.1:${port}/ws`,
        getToken: () => a.accessToken,
        WebSocket: WebSocket as unknown as WebSocketCtor,
        sendTimeoutMs: 0,
        minDelayMs: 20,
        maxDelayMs: 200,
      });
      sdk = client;
      const events: { seq: number; body: unknown }[] = [];
      const rewinds: RewoundEvent[] = [];
      client.on('event', (e) => {
        if (e.conv === conv && e.kind === 'message') events.push({ seq: e.seq, body: e.body });
      });
      client.on('rewound', (r) => {
        rewinds.push(r);
        // What an app does: drop what it holds of the conversation; the events follow again.
        events.length = 0;
      });
      await client.connect();
      const acks = [];
      for (let i = 1; i <= 4; i++) acks.push(await client.send(conv, `mine ${i}`));
      await replica.stop();
      const point = acks[1]!.seq;
      await rewindTo(env.env.DATABASE_URL!, conv, point);
      // Sent while the hubs are down: waits in the outbox, goes out once after the restore.
      const queued = client.send(conv, 'queued', { cid: 'queued-1' });
      replica = await startTestReplica(env.env);
      port = replica.port;
      const b2 = await connect(replica.port, b.accessToken);
      const other = await b2.c.request({ type: 'send', conv, cid: 'b-1', body: 'from b' });
      const queuedAck = await queued;
      assert.equal(rewinds.length, 1);
      assert.equal(rewinds[0]!.restoredSeq, point);
      assert.deepEqual(
        rewinds[0]!.lost.map((x) => x.cid),
        acks.slice(2).map((x) => x.cid),
        'the acks above the recovery point are reported lost',
      );
      const bodies = new Map<number, unknown>();
      for (const e of events) {
        assert.ok(!bodies.has(e.seq), `seq ${e.seq} twice`);
        bodies.set(e.seq, e.body);
      }
      while (!bodies.has(Math.max(queuedAck.seq, other.seq as number))) {
        await new Promise<void>((r) => client.once('event', () => r()));
        for (const e of events) bodies.set(e.seq, e.body);
      }
      const history = await trpcClient(replica.port, b.accessToken).conversations.history.query({ conversationId: conv });
      assert.equal(history.epoch, client.epochs.get(conv));
      assert.deepEqual(
        events.map((e) => [e.seq, e.body]),
        history.events.filter((e) => e.kind === 'message').map((e) => [e.seq, e.body]),
        'the client ends with exactly the server history',
      );
      assert.equal(history.events.filter((e) => e.body === 'queued').length, 1, 'the outbox went through once');
      b2.c.close();
    } finally {
      sdk?.close();
      await replica.stop();
      await env.cleanup();
    }
  });
});
