import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Replica } from '../../server/src/replica.ts';
import { services } from '../helpers/env.ts';
import { assertLedgerConsistent, stripeEnv } from '../helpers/payments.ts';
import { errorCode, newUser, startTestReplica, testEnv, trpcClient, type TestEnv } from '../helpers/server.ts';
import WebSocket from 'ws';
import { connect, RawClient, type Frame } from '../helpers/ws.ts';

/** A small seeded PRNG (mulberry32), so a failing run can be replayed. */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Like `connect`, but a socket the server drops before `ready` is opened again once, as every
 * client does. Seen on the base branch too (d0ddae7, without payments): about one run in three,
 * the fifth upgrade on a replica gets 101 and then a 1006 drop before `open` runs; reported to
 * the hub's owners. The tips and their delivery are what this test asserts, not the upgrade.
 */
async function open(port: number, token: string): Promise<RawClient> {
  try {
    return await openOnce(port, token);
  } catch (err) {
    if (!/close 1006/.test((err as Error).message)) throw err;
    return openOnce(port, token);
  }
}

async function openOnce(port: number, token: string): Promise<RawClient> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { authorization: `Bearer ${token}` } });
  let status = 101;
  ws.once('unexpected-response', (_req, res) => {
    status = res.statusCode ?? 0;
    ws.terminate();
  });
  let error = '';
  ws.on('error', (e) => (error = e.message));
  const c = new RawClient(ws);
  const closed = c.closed.then((x) =>
    Promise.reject(
      new Error(
        `socket closed before ready: HTTP ${status}, close ${x.code} ${x.reason} ${error}; frames ${JSON.stringify(c.frames).slice(0, 300)}`,
      ),
    ),
  );
  await Promise.race([c.next((f) => f.type === 'ready', 30_000), closed]);
  c.send({ type: 'resume', ref: 'initial', convs: {} });
  await Promise.race([c.wait((f) => f.type === 'resumed', 30_000), closed]);
  return c;
}

const PLANS = JSON.stringify([
  {
    id: 'premium',
    name: 'Premium',
    price: 500,
    periodDays: 30,
    limits: { sendRatePerS: 1, sendBurst: 40, connectionsPerUser: 5, groupMembers: 50, historyDepth: 1_000_000 },
  },
]);

describe('payments across two replicas on Redis and PostgreSQL', () => {
  let env: TestEnv;
  let a: Replica;
  let b: Replica;
  before(async () => {
    env = await testEnv('postgres', { redis: true });
    const common = {
      ...stripeEnv(services.stripeApiUrl()),
      PAYMENTS_PLANS: PLANS,
      WS_RATE_PER_S: '1',
      WS_RATE_BURST: '5',
      WS_MAX_CONNECTIONS_PER_USER: '2',
      LOG_LEVEL: process.env.PAY_LOG ?? 'silent',
    };
    a = await startTestReplica(env.env, common);
    b = await startTestReplica(env.env, common);
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await env?.cleanup();
  });

  test('7 300 concurrent tips between 10 users on two replicas: money conserved, one event per key, every socket gets each tip once in seq order', async () => {
    const seed = Number(process.env.PAYMENTS_SEED ?? Date.now() % 100_000);
    const rnd = prng(seed);
    const users = await Promise.all(Array.from({ length: 10 }, () => newUser(a.port, 'tipper')));
    const g = await users[0]!.client.conversations.createGroup.mutate({ title: 'tips', memberIds: users.slice(1).map((u) => u.id) });
    for (const u of users) await a.services.payments.grant({ username: u.username, amount: 1000, actor: 'test' });
    const replicaOf = (i: number) => (i % 2 ? b : a);
    const sockets: RawClient[] = [];
    for (let i = 0; i < users.length; i++) {
      const t = performance.now();
      sockets.push(
        await open(replicaOf(i).port, users[i]!.accessToken).catch((e) =>
          Promise.reject(new Error(`socket ${i} after ${(performance.now() - t).toFixed(0)} ms: ${e.message}`)),
        ),
      );
    }
    const apis = users.map((u, i) => trpcClient(replicaOf(i).port, u.accessToken));
    // 240 distinct requests and 60 repeats of some of them with the same key.
    const distinct = Array.from({ length: 240 }, () => {
      const from = Math.floor(rnd() * 10);
      const to = (from + 1 + Math.floor(rnd() * 9)) % 10;
      return { from, to, amount: 1 + Math.floor(rnd() * 150), key: randomBytes(6).toString('hex') };
    });
    const calls = [...distinct, ...Array.from({ length: 60 }, () => distinct[Math.floor(rnd() * distinct.length)]!)];
    for (let i = calls.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [calls[i], calls[j]] = [calls[j]!, calls[i]!];
    }
    const results = await Promise.allSettled(
      calls.map((c) =>
        apis[c.from]!.payments.tip.mutate({ conversationId: g.id, toUserId: users[c.to]!.id, amount: c.amount, idempotencyKey: c.key }),
      ),
    );
    const byKey = new Map<string, { transferId: string; seq: number }>();
    for (let i = 0; i < results.length; i++) {
      const r = results[i]!;
      if (r.status === 'rejected') {
        assert.equal(
          await errorCode(Promise.reject(r.reason)),
          'PRECONDITION_FAILED',
          `seed ${seed}: only a short wallet may refuse a tip`,
        );
        continue;
      }
      const prior = byKey.get(calls[i]!.key);
      if (prior)
        assert.deepEqual(
          { transferId: r.value.transferId, seq: r.value.seq },
          prior,
          `seed ${seed}: a repeated key returns the first result`,
        );
      else byKey.set(calls[i]!.key, { transferId: r.value.transferId, seq: r.value.seq });
    }
    const transfers = new Set([...byKey.values()].map((v) => v.transferId));
    assert.ok(transfers.size > 100, `seed ${seed}: most tips went through (${transfers.size})`);
    // The store holds one system event per transfer.
    const history = [];
    for (let afterSeq = 0; ; ) {
      const page = await apis[0]!.conversations.history.query({ conversationId: g.id, afterSeq, limit: 100 });
      if (!page.events.length) break;
      history.push(...page.events);
      afterSeq = page.events.at(-1)!.seq;
    }
    const tipEvents = history.filter((e) => e.kind === 'system' && (e as Frame).subtype === 'tip');
    assert.equal(tipEvents.length, transfers.size, `seed ${seed}: one system event per distinct key`);
    assert.deepEqual(new Set(tipEvents.map((e) => (e as Frame).transferId)), transfers);
    // Every member socket, on either replica, got each tip event once, in seq order.
    const lastSeq = history.at(-1)!.seq;
    for (const [i, s] of sockets.entries()) {
      if (process.env.PAY_LOG) console.log('socket', i, s.frames.length, s.isClosed, lastSeq, s.events(g.id).length);
      await s.wait((f) => f.type === 'event' && f.conv === g.id && f.seq === lastSeq, 20_000);
      const seqs = s.events(g.id).map((e) => e.seq);
      for (let k = 1; k < seqs.length; k++)
        assert.equal(seqs[k], seqs[k - 1]! + 1, `seed ${seed}: socket ${i} in seq order, no gap, no duplicate`);
      const tips = s.events(g.id).filter((e) => e.kind === 'system' && e.subtype === 'tip');
      assert.equal(tips.length, transfers.size, `seed ${seed}: socket ${i} got every tip once`);
      assert.equal(new Set(tips.map((e) => e.transferId)).size, transfers.size);
    }
    const balances = await Promise.all(apis.map((c) => c.payments.balance.query()));
    for (const bal of balances) assert.ok(bal.balance >= 0);
    assert.equal(
      balances.reduce((s, x) => s + x.balance, 0),
      10_000,
      `seed ${seed}: no money created or lost`,
    );
    await assertLedgerConsistent(a.database);
    for (const s of sockets) s.close();
  });

  test('7 premium bought on one replica reaches a socket on the other within a second, which then takes a burst free refuses; renewal when short downgrades', async () => {
    const u = await newUser(a.port, 'prem');
    const control = await newUser(a.port, 'free');
    const [mine, theirs] = await Promise.all([
      u.client.conversations.createGroup.mutate({ title: 'mine', memberIds: [] }),
      control.client.conversations.createGroup.mutate({ title: 'theirs', memberIds: [] }),
    ]);
    const { c: sock } = await connect(b.port, u.accessToken);
    const { c: free } = await connect(b.port, control.accessToken);
    let n = 0;
    const burst = (c: RawClient, conv: string, count: number) =>
      Promise.all(Array.from({ length: count }, () => c.request({ type: 'send', conv, cid: `c${++n}`, body: 'hi' })));
    // The free limit (burst 5, one token already spent on the initial resume) refuses most of a
    // burst of 9; a sixth refusal (more than the burst) would close the socket before its acks.
    const refused = await burst(free, theirs.id, 9);
    assert.ok(refused.filter((f) => f.type === 'error' && f.code === 'RATE_LIMITED').length >= 4);

    // Free allows 2 sockets per user: a third is closed with 4008.
    const second = await open(b.port, u.accessToken);
    await assert.rejects(openOnce(b.port, u.accessToken), /close 4008/);

    await a.services.payments.grant({ username: u.username, amount: 700, actor: 'test' });
    const from = sock.frames.length;
    const t0 = performance.now();
    const e = await u.client.payments.subscribe.mutate({ planId: 'premium', idempotencyKey: randomBytes(6).toString('hex') });
    const limits = await sock.wait((f) => f.type === 'limits', 1000, from);
    assert.ok(performance.now() - t0 < 1000, 'the limits frame arrives within a second');
    assert.equal(limits.plan, 'premium');
    assert.equal(limits.until, e.until);
    assert.equal(limits.limits.sendBurst, 40);
    const acked = await burst(sock, mine.id, 30);
    assert.deepEqual(new Set(acked.map((f) => f.type)), new Set(['ack']), 'the same socket takes a burst of 30 without reconnecting');
    assert.equal(sock.isClosed, false);
    // Premium allows 5: a third socket now opens, and starts with the premium limits.
    const third = await open(b.port, u.accessToken);
    assert.deepEqual(new Set((await burst(third, mine.id, 20)).map((f) => f.type)), new Set(['ack']));

    // The period ends with 200 in the wallet, 500 due: downgraded (clock injected, no waiting).
    const at = sock.frames.length;
    assert.deepEqual(await a.services.payments.runRenewals(Date.parse(e.until!) + 1), { renewed: 0, downgraded: 1 });
    const down = await sock.wait((f) => f.type === 'limits', 1000, at);
    assert.equal(down.plan, 'free');
    assert.equal(down.until, null);
    assert.equal(down.limits.sendBurst, 5);
    assert.equal((await u.client.payments.entitlements.query()).plan, 'free');
    assert.equal((await u.client.payments.balance.query()).balance, 200);
    const again = await burst(sock, mine.id, 8);
    assert.ok(
      again.some((f) => f.type === 'error' && f.code === 'RATE_LIMITED'),
      'back on the free limit',
    );
    for (const c of [sock, free, second, third]) c.close();
  });
});
