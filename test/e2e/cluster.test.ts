import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { SocketClient, type WebSocketCtor } from '@hubbub/client';
import type { EventFrame } from '../../server/src/protocol/frames.ts';
import type { Replica } from '../../server/src/replica.ts';
import { spawnReplica, type ProcessReplica } from '../helpers/process-replica.ts';
import { startRedis, type RedisHandle } from '../helpers/redis.ts';
import { newUser, startTestReplica, testEnv, trpcClient, type Client, type TestEnv } from '../helpers/server.ts';
import { connect } from '../helpers/ws.ts';

type User = Awaited<ReturnType<typeof newUser>>;

/** An SDK client that records every event it hands to the app. */
function sdkClient(url: () => string, token: string) {
  const client = new SocketClient({
    url,
    getToken: () => token,
    WebSocket: WebSocket as unknown as WebSocketCtor,
    minDelayMs: 50,
    maxDelayMs: 500,
  });
  const events: EventFrame[] = [];
  client.on('event', (e) => events.push(e));
  return { client, events };
}

/** Every event of a conversation, paged through conversations.history. */
async function fullHistory(api: Client, conv: string) {
  const out: EventFrame[] = [];
  for (let after = 0; ; ) {
    const page = await api.conversations.history.query({ conversationId: conv, afterSeq: after, limit: 100 });
    if (!page.events.length) return out;
    out.push(...page.events);
    after = page.events.at(-1)!.seq;
  }
}

/** Resolves when `pred` holds, re-checked on each event (no sleeps). */
function until(clients: { client: SocketClient }[], pred: () => boolean, timeoutMs = 30_000, what = 'condition'): Promise<void> {
  if (pred()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const offs: (() => void)[] = [];
    const done = () => {
      if (!pred()) return;
      clearTimeout(t);
      offs.forEach((o) => o());
      resolve();
    };
    const t = setTimeout(() => (offs.forEach((o) => o()), reject(new Error(`timed out waiting for ${what}`))), timeoutMs);
    for (const c of clients) offs.push(c.client.on('event', done), c.client.on('resumed', done));
  });
}

function assertSameLog(name: string, got: EventFrame[], expected: EventFrame[]) {
  assert.deepEqual(
    got.map((e) => `${e.seq}:${e.id}`),
    expected.map((e) => `${e.seq}:${e.id}`),
    `${name}: events differ from the history`,
  );
}

describe('cluster: replicas on one Redis, real PostgreSQL', () => {
  let env: TestEnv;
  before(async () => {
    env = await testEnv('postgres', { redis: true });
  });
  after(async () => env?.cleanup());

  test('5.2 20 clients on 2 replicas, all sending at once into one group: each gets every acked message once, in one order, equal to history', async () => {
    const a = await startTestReplica(env.env);
    const b = await startTestReplica(env.env);
    try {
      const users: User[] = [];
      for (let i = 0; i < 20; i++) users.push(await newUser(i % 2 ? b.port : a.port, 'c'));
      const conv = (await users[0]!.client.conversations.createGroup.mutate({ title: 'all', memberIds: users.slice(1).map((u) => u.id) }))
        .id;
      const clients = users.map((u, i) => sdkClient(() => `ws://127.0.0.1:${i % 2 ? b.port : a.port}/ws`, u.accessToken));
      await Promise.all(clients.map((c) => c.client.connect()));
      const acks = await Promise.all(
        clients.flatMap((c, i) => Array.from({ length: 10 }, (_, k) => c.client.send(conv, `from ${i} #${k}`))),
      );
      const maxSeq = Math.max(...acks.map((x) => x.seq));
      assert.equal(new Set(acks.map((x) => x.seq)).size, 200, 'every ack has its own seq');
      await until(clients, () => clients.every((c) => c.client.seqs.get(conv) === maxSeq), 30_000, 'every client at the last seq');
      const history = await fullHistory(users[0]!.client, conv);
      assert.deepEqual(
        history.map((e) => e.seq),
        Array.from({ length: history.length }, (_, i) => i + 1),
        'seqs 1..N',
      );
      assert.equal(history.filter((e) => e.kind === 'message').length, 200);
      const ackIds = new Set(acks.map((x) => x.id));
      assert.ok(history.filter((e) => e.kind === 'message').every((e) => ackIds.has(e.id)));
      for (const [i, c] of clients.entries()) {
        const mine = c.events.filter((e) => e.conv === conv && e.seq > 1);
        assertSameLog(
          `client ${i}`,
          mine,
          history.filter((e) => e.seq > 1),
        );
      }
      for (const c of clients) c.client.close();
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test("5.5 a send moves the sender's cursor in its own commit: their device on the other replica gets `read` after the event, and unread is 0 for them only", async () => {
    const a = await startTestReplica(env.env);
    const b = await startTestReplica(env.env);
    try {
      const me = await newUser(a.port, 'own');
      const them = await newUser(b.port, 'own');
      const conv = (await me.client.conversations.createDirect.mutate({ userId: them.id })).id;
      const { c: here } = await connect(a.port, me.accessToken);
      const { c: there } = await connect(b.port, me.accessToken);
      const { c: other } = await connect(b.port, them.accessToken);
      let last = 0;
      for (let i = 0; i < 3; i++) last = (await here.request({ type: 'send', conv, cid: `own-${i}`, body: `m${i}` })).seq;
      // On the other replica the sender's second device gets each event, then its `read`.
      const read = await there.wait((f) => f.type === 'read' && f.conv === conv && f.user === me.id && f.seq === last);
      assert.equal(read.seq, last);
      const seen = there.frames.filter((f) => f.conv === conv && (f.type === 'event' || f.type === 'read'));
      const at = (t: string, seq: number) => seen.findIndex((f) => f.type === t && f.seq === seq);
      assert.ok(at('event', last) >= 0 && at('event', last) < at('read', last), 'the read follows its event');
      // The other member gets the events and no `read` of the sender's own messages.
      await other.wait((f) => f.type === 'event' && f.conv === conv && f.seq === last);
      assert.equal(other.frames.filter((f) => f.type === 'read' && f.user === me.id).length, 0);
      const mine = (await me.client.conversations.list.query()).find((x: { id: string }) => x.id === conv)!;
      assert.equal(mine.unread, 0);
      const theirs = (await them.client.conversations.list.query()).find((x: { id: string }) => x.id === conv)!;
      assert.equal(theirs.unread, last);
      for (const c of [here, there, other]) c.close();
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test('5.3 a replica killed with SIGKILL mid-run: its clients resume on the other; no acked message lost or duplicated; its users go offline', async () => {
    const penv = { ...env.env };
    const p1: ProcessReplica = await spawnReplica(penv);
    const p2: ProcessReplica = await spawnReplica(penv);
    let p1Alive = true;
    try {
      const users: User[] = [];
      for (let i = 0; i < 8; i++) users.push(await newUser(p2.port, 'k'));
      const lonely = await newUser(p2.port, 'lonely');
      const conv = (
        await users[0]!.client.conversations.createGroup.mutate({ title: 'kill', memberIds: [...users.slice(1), lonely].map((u) => u.id) })
      ).id;
      const urlFor = (i: number) => () => `ws://127.0.0.1:${i % 2 === 0 && p1Alive ? p1.port : p2.port}/ws`;
      const clients = users.map((u, i) => sdkClient(urlFor(i), u.accessToken));
      await Promise.all(clients.map((c) => c.client.connect()));
      // A raw socket on the doomed replica that never reconnects, and a watcher on the survivor.
      const lonelySock = await connect(p1.port, lonely.accessToken);
      const watcher = await connect(p2.port, users[1]!.accessToken);
      await watcher.c.wait((f) => f.type === 'presence' && f.user === lonely.id && f.status === 'online');

      let sent = 0;
      const acks: Promise<{ seq: number; id: string; cid: string }>[] = [];
      const killAfter = 40;
      const sendRound = async () => {
        for (const [i, c] of clients.entries()) {
          acks.push(c.client.send(conv, `m ${i} ${sent}`));
          sent++;
        }
      };
      while (sent < killAfter) {
        await sendRound();
        await Promise.all(acks);
      }
      // Mid-run: more sends in flight, then SIGKILL.
      await sendRound();
      p1Alive = false;
      await p1.kill('SIGKILL');
      for (let r = 0; r < 5; r++) await sendRound();
      const settled = await Promise.all(acks);
      const maxSeq = Math.max(...settled.map((x) => x.seq));
      assert.equal(new Set(settled.map((x) => x.cid)).size, settled.length);
      assert.equal(new Set(settled.map((x) => x.seq)).size, settled.length, 'no two acks share a seq');
      await until(clients, () => clients.every((c) => c.client.seqs.get(conv) === maxSeq), 30_000, 'every client caught up');
      const history = await fullHistory(users[0]!.client, conv);
      const messages = history.filter((e) => e.kind === 'message');
      assert.equal(messages.length, settled.length, 'each acked cid stored exactly once');
      assert.deepEqual(new Set(messages.map((m) => m.cid)), new Set(settled.map((x) => x.cid)));
      for (const [i, c] of clients.entries()) {
        const mine = c.events.filter((e) => e.conv === conv && e.seq > 1);
        assertSameLog(
          `client ${i}`,
          mine,
          history.filter((e) => e.seq > 1),
        );
      }
      // The dead replica's only user goes offline on the survivor within seconds.
      const t0 = Date.now();
      await watcher.c.wait((f) => f.type === 'presence' && f.user === lonely.id && f.status === 'offline', 15_000);
      assert.ok(Date.now() - t0 < 15_000);
      assert.ok(lonelySock.c.isClosed || (await lonelySock.c.closed));
      for (const c of clients) c.client.close();
      watcher.c.close();
    } finally {
      await p1.kill('SIGKILL');
      await p2.kill('SIGKILL');
    }
  });

  test('5.8 SIGTERM drains: clients are told 1012, every acked message is durable, the process exits 0', async () => {
    const p = await spawnReplica(env.env);
    const api = trpcClient(p.port);
    try {
      const u1 = await newUser(p.port, 'd');
      const u2 = await newUser(p.port, 'd');
      const conv = (await u1.client.conversations.createDirect.mutate({ userId: u2.id })).id;
      const s1 = await connect(p.port, u1.accessToken);
      const s2 = await connect(p.port, u2.accessToken);
      const acks: Record<string, any>[] = [];
      for (let i = 0; i < 20; i++) {
        s1.c.send({ type: 'send', ref: `d${i}`, conv, cid: `d${i}`, body: `drain ${i}` });
      }
      for (let i = 0; i < 20; i++) acks.push(await s1.c.wait((f) => f.type === 'ack' && f.cid === `d${i}`));
      p.child.kill('SIGTERM');
      const [c1, c2] = await Promise.all([s1.c.closed, s2.c.closed]);
      assert.equal(c1.code, 1012);
      assert.equal(c2.code, 1012);
      assert.equal(await p.exited, 0);
      const q = await spawnReplica(env.env);
      try {
        const hist = await fullHistory(trpcClient(q.port, u1.accessToken), conv);
        const ids = new Set(hist.map((e) => e.id));
        for (const a of acks) assert.ok(ids.has(a.id), `acked ${a.cid} is durable`);
      } finally {
        await q.kill('SIGKILL');
      }
      assert.ok(api);
    } finally {
      await p.kill('SIGKILL');
    }
  });
});

describe('cluster: Redis restarted mid-run', () => {
  let env: TestEnv;
  let redis: RedisHandle;
  let a: Replica;
  let b: Replica;
  before(async () => {
    redis = await startRedis();
    env = await testEnv('postgres');
    env.env.REDIS_URL = redis.url;
    a = await startTestReplica(env.env);
    b = await startTestReplica(env.env);
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await redis?.stop();
    await env?.cleanup();
  });

  test('5.1 seqs continue without reuse after a Redis restart, and every receiver heals its gap', async () => {
    const users: User[] = [];
    for (let i = 0; i < 6; i++) users.push(await newUser(i % 2 ? b.port : a.port, 'r'));
    const conv = (await users[0]!.client.conversations.createGroup.mutate({ title: 'redis', memberIds: users.slice(1).map((u) => u.id) }))
      .id;
    const clients = users.map((u, i) => sdkClient(() => `ws://127.0.0.1:${i % 2 ? b.port : a.port}/ws`, u.accessToken));
    await Promise.all(clients.map((c) => c.client.connect()));
    const acks: { seq: number }[] = [];
    for (let i = 0; i < 12; i++) acks.push(await clients[i % 6]!.client.send(conv, `before ${i}`));
    await until(clients, () => clients.every((c) => c.client.seqs.get(conv) === acks.at(-1)!.seq));

    await redis.kill();
    // While Redis is gone, sends still get durable acks (the store, not Redis, gives seqs).
    for (let i = 0; i < 6; i++) acks.push(await clients[i % 6]!.client.send(conv, `during ${i}`));
    await redis.start(); // empty: FLUSHALL-equivalent
    for (let i = 0; i < 6; i++) acks.push(await clients[i % 6]!.client.send(conv, `after ${i}`));

    const seqs = acks.map((x) => x.seq);
    assert.deepEqual(
      seqs,
      [...seqs].sort((x, y) => x - y),
      'seqs keep increasing',
    );
    assert.equal(new Set(seqs).size, seqs.length, 'no seq reused');
    const last = seqs.at(-1)!;
    await until(clients, () => clients.every((c) => c.client.seqs.get(conv) === last), 30_000, 'every receiver healed');
    const history = await fullHistory(users[0]!.client, conv);
    assert.deepEqual(
      history.map((e) => e.seq),
      Array.from({ length: last }, (_, i) => i + 1),
    );
    for (const [i, c] of clients.entries())
      assertSameLog(
        `client ${i}`,
        c.events.filter((e) => e.conv === conv && e.seq > 1),
        history.filter((e) => e.seq > 1),
      );
    for (const c of clients) c.client.close();
  });
});
