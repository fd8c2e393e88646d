import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Replica } from '../../server/src/replica.ts';
import { services } from '../helpers/env.ts';
import { newUser, startTestReplica, testEnv, type TestEnv } from '../helpers/server.ts';
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
