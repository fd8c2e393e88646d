import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { Replica } from '../../server/src/replica.ts';
import { services } from '../helpers/env.ts';
import { newUser, startTestReplica, testEnv, trpcClient, type TestEnv } from '../helpers/server.ts';
import { connect } from '../helpers/ws.ts';

describe('hub on the Cassandra message store (MESSAGE_STORE=cassandra), two replicas on Redis', () => {
  let env: TestEnv;
  let a: Replica;
  let b: Replica;
  before(async () => {
    env = await testEnv('postgres', { redis: true });
    Object.assign(env.env, {
      MESSAGE_STORE: 'cassandra',
      CASSANDRA_CONTACT_POINTS: services.cassandraContactPoints().join(','),
      CASSANDRA_LOCAL_DC: services.cassandraLocalDc(),
      CASSANDRA_KEYSPACE: `t_${randomBytes(5).toString('hex')}`,
    });
    a = await startTestReplica(env.env);
    b = await startTestReplica(env.env);
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await env?.cleanup();
  });

  test('send/ack/event, idempotent cid, resume and history all come from Cassandra', async () => {
    const u1 = await newUser(a.port, 'cass');
    const u2 = await newUser(b.port, 'cass');
    const conv = (await u1.client.conversations.createDirect.mutate({ userId: u2.id })).id;
    const s1 = await connect(a.port, u1.accessToken);
    const s2 = await connect(b.port, u2.accessToken);
    const acks: Record<string, any>[] = [];
    for (let i = 0; i < 10; i++) acks.push(await s1.c.request({ type: 'send', conv, cid: `k${i}`, body: `hello ${i}` }));
    const dup = await s1.c.request({ type: 'send', conv, cid: 'k3', body: 'again' });
    assert.equal(dup.seq, acks[3]!.seq);
    assert.equal(dup.id, acks[3]!.id);
    await s2.c.wait((f) => f.type === 'event' && f.seq === acks.at(-1)!.seq);
    const got = s2.c.events(conv).filter((f) => f.kind === 'message');
    assert.deepEqual(
      got.map((f) => f.body),
      acks.map((_, i) => `hello ${i}`),
    );
    s2.c.close();
    await s2.c.closed;
    const more = await s1.c.request({ type: 'send', conv, cid: 'k10', body: 'while away' });
    const back = await connect(a.port, u2.accessToken, { resume: { [conv]: acks.at(-1)!.seq } });
    assert.deepEqual(
      back.c.events(conv).map((f) => f.seq),
      [more.seq],
    );
    const hist = await u2.client.conversations.history.query({ conversationId: conv, limit: 100 });
    assert.equal(hist.lastSeq, more.seq);
    assert.deepEqual(
      hist.events.map((e) => e.seq),
      Array.from({ length: more.seq }, (_, i) => i + 1),
    );
    const list = await u2.client.conversations.list.query();
    assert.equal(list[0]!.lastMessage?.body, 'while away');
    s1.c.close();
    back.c.close();
  });
});

describe('5.9 restore:epochs on the Cassandra message store', () => {
  test('5.9 every conversation gets a new epoch in Cassandra; a resume with the old one is answered `rewound` and replayed, a current one is served as ever', async () => {
    const env = await testEnv('postgres');
    Object.assign(env.env, {
      MESSAGE_STORE: 'cassandra',
      CASSANDRA_CONTACT_POINTS: services.cassandraContactPoints().join(','),
      CASSANDRA_LOCAL_DC: services.cassandraLocalDc(),
      CASSANDRA_KEYSPACE: `t_${randomBytes(5).toString('hex')}`,
    });
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-epochs-'));
    let replica: Replica = await startTestReplica(env.env);
    try {
      const a = await newUser(replica.port, 'cep');
      const b = await newUser(replica.port, 'cep');
      const conv = (await a.client.conversations.createGroup.mutate({ title: 'cassandra epochs', memberIds: [b.id] })).id;
      const quiet = (await a.client.conversations.createDirect.mutate({ userId: b.id })).id;
      const sa = await connect(replica.port, a.accessToken);
      const sb = await connect(replica.port, b.accessToken);
      assert.deepEqual([sb.ready.epochs[conv], sb.ready.epochs[quiet]], [1, 1], 'logs never rewound are in epoch 1');
      let last = 0;
      for (let i = 1; i <= 3; i++) last = (await sa.c.request({ type: 'send', conv, cid: `c-${i}`, body: `before ${i}` })).seq as number;
      await sb.c.wait((f) => f.type === 'event' && f.conv === conv && f.seq === last);
      sa.c.close();
      sb.c.close();
      await replica.stop();

      // The operator's step after restoring the snapshot, as its own process.
      const cli = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'server/src/cli/restore-epochs.ts'], {
        env: { ...process.env, ...env.env, DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
      });
      assert.match(cli.stdout, /new log epoch for 2 conversations \(cassandra, postgres;/);

      replica = await startTestReplica(env.env);
      const sb2 = await connect(replica.port, b.accessToken, { resume: false });
      const epoch = sb2.ready.epochs[conv] as number;
      assert.ok(epoch >= Math.floor(Date.now() / 1000) - 60, `new epoch ${epoch}`);
      assert.equal(sb2.ready.epochs[quiet], epoch, 'a conversation with no events in the log is rewound too');
      sb2.c.send({ type: 'resume', ref: 'old', convs: { [conv]: last, [quiet]: 0 }, epochs: { [conv]: 1, [quiet]: 1 } });
      const resumed = await sb2.c.wait((f) => f.type === 'resumed' && f.ref === 'old');
      const rewound = sb2.c.frames.filter((f) => f.type === 'rewound');
      const quietHead = (await trpcClient(replica.port, b.accessToken).conversations.history.query({ conversationId: quiet, limit: 1 }))
        .lastSeq;
      assert.deepEqual(
        rewound.map((f) => [f.conv, f.epoch, f.seq, f.restoredSeq]),
        [
          [conv, epoch, last, last],
          [quiet, epoch, quietHead, quietHead],
        ],
      );
      const at = sb2.c.frames.indexOf(rewound.find((f) => f.conv === conv)!);
      assert.deepEqual(
        sb2.c.frames
          .slice(at)
          .filter((f) => f.type === 'event' && f.conv === conv)
          .map((f) => f.seq),
        Array.from({ length: last }, (_, i) => i + 1),
        'replayed from seq 1 of the new epoch',
      );
      assert.equal(resumed.epochs[conv], epoch);

      // In the current epoch: nothing replayed; new sends continue the log in that epoch.
      const sb3 = await connect(replica.port, b.accessToken, { resume: false });
      sb3.c.send({ type: 'resume', ref: 'now', convs: { [conv]: last }, epochs: { [conv]: epoch } });
      await sb3.c.wait((f) => f.type === 'resumed' && f.ref === 'now');
      const sa2 = await connect(replica.port, a.accessToken);
      const next = await sa2.c.request({ type: 'send', conv, cid: 'c-after', body: 'after' });
      assert.equal(next.seq, last + 1);
      await sb3.c.wait((f) => f.type === 'event' && f.conv === conv && f.seq === last + 1);
      assert.deepEqual(
        sb3.c.frames.filter((f) => f.type === 'rewound' || (f.type === 'event' && f.conv === conv)).map((f) => f.seq),
        [last + 1],
      );
      const hist = await trpcClient(replica.port, b.accessToken).conversations.history.query({ conversationId: conv, limit: 100 });
      assert.equal(hist.epoch, epoch);
      for (const s of [sb2, sb3, sa2]) s.c.close();
    } finally {
      await replica.stop();
      await env.cleanup();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
