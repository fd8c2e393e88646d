import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { errorCode, newUser, trpcClient, replicaPerSuite } from '../helpers/server.ts';
import WebSocket from 'ws';
import { connect } from '../helpers/ws.ts';
import { SocketClient, type WebSocketCtor } from '@hubbub/client';
import { medianPing, metricValue, pacedMedianPing, rawHttp, until, upgradeRequest } from '../helpers/hardening.ts';
import type { Replica } from '../../server/src/replica.ts';

/** Writes `n` messages into a conversation through the hub's own writer (seeding, not under test). */
async function seed(replica: Replica, conv: string, from: string, n: number) {
  const writes = [];
  for (let i = 0; i < n; i++) {
    writes.push(
      replica.hub.writer.write(conv, {
        id: randomUUID(),
        kind: 'message',
        from,
        ts: Date.now(),
        cid: `seed-${i}`,
        data: { body: `seed message ${i} ` + 'x'.repeat(100) },
      }),
    );
  }
  await Promise.all(writes);
}

/** Runs the flood worker (its own thread) while `measure` runs; returns what each saw. */
async function flooding<T>(data: Record<string, unknown>, measure: () => Promise<T>): Promise<{ value: T; stats: Record<string, any> }> {
  const w = new Worker(new URL('../helpers/flood-worker.mjs', import.meta.url), { workerData: data });
  const stats = new Promise<Record<string, any>>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  // The flood is under way before the measurement starts.
  await new Promise((r) => setTimeout(r, 300));
  const value = await measure();
  w.postMessage('stop');
  const s = await stats;
  await w.terminate();
  return { value, stats: s };
}

// Floods cost the flooder, and a healthy client on the same hub keeps
// its ping round trip within 2× of its idle value (measured in the same test).
describe('hardening: resume floods and tRPC batches (one replica, PostgreSQL)', () => {
  const replica = replicaPerSuite('postgres', { WS_MAX_CONNECTIONS_PER_USER: '5' });

  test('a resume flood gets RATE_LIMITED then 4008, replays a bounded number of events, and a healthy ping stays within 2× idle', async () => {
    const attacker = await newUser(replica.port, 'flood');
    const healthy = await newUser(replica.port, 'calm');
    const conv = (await attacker.client.conversations.createDirect.mutate({ userId: healthy.id })).id;
    await seed(replica, conv, attacker.id, 1600);
    const { c: calm } = await connect(replica.port, healthy.accessToken);
    await medianPing(calm, 10); // warm up
    const idle = await pacedMedianPing(calm);
    const { value: busy, stats } = await flooding({ port: replica.port, token: attacker.accessToken, kind: 'resume', conv }, () =>
      pacedMedianPing(calm),
    );
    console.log(
      `resume flood: idle ping p50 ${idle.toFixed(3)} ms, under flood ${busy.toFixed(3)} ms (${(busy / idle).toFixed(2)}×); ${JSON.stringify(stats)}`,
    );
    assert.ok(stats.rounds >= 1);
    const closes = stats.closes as Record<string, number>;
    // Each flood socket is closed 4008. The hub closes it while the socket's own 500 frames may
    // still be unread in the hub's receive buffer, so the kernel can answer with a reset that
    // reaches the client before the close frame: `ws` then reports 1006 for that round. Nothing
    // else may close a flood socket, and most rounds must see the 4008 itself.
    const others = Object.keys(closes).filter((c) => c !== '4008' && c !== '1006');
    assert.ok(
      others.length === 0 && (closes['4008'] ?? 0) >= 1 && (closes['4008'] ?? 0) >= 9 * (closes['1006'] ?? 0),
      `closes ${JSON.stringify(closes)}`,
    );
    assert.ok(stats.rateLimited >= 60 * stats.rounds, `${stats.rateLimited} RATE_LIMITED in ${stats.rounds} rounds`);
    // Unbudgeted, each flood socket would have been sent 500 × 1000 events.
    assert.ok(stats.events <= 20_000 + 2000 * 30, `${stats.events} events replayed`);
    assert.ok(busy <= 2 * idle, `ping p50 ${busy.toFixed(3)} ms under flood vs ${idle.toFixed(3)} ms idle`);
    assert.equal(calm.isClosed, false);
    calm.close();
    await until(async () => (await metricValue(replica.metricsPort, 'hubbub_ws_connections')) === 0, 5000, 'no sockets left');
  });

  test('a 5,000-call GET batch and a 1,000-call POST batch get a clear 4xx, run nothing, and a healthy ping stays within 2× idle', async () => {
    const attacker = await newUser(replica.port, 'batch');
    const healthy = await newUser(replica.port, 'calm');
    const before = await attacker.client.auth.me.query();
    const { c: calm } = await connect(replica.port, healthy.accessToken);
    await medianPing(calm, 10);
    const idle = await pacedMedianPing(calm);
    const { value: busy, stats } = await flooding({ port: replica.port, token: attacker.accessToken, kind: 'batch' }, () =>
      pacedMedianPing(calm),
    );
    console.log(
      `batch flood: idle ping p50 ${idle.toFixed(3)} ms, under flood ${busy.toFixed(3)} ms (${(busy / idle).toFixed(2)}×); ${JSON.stringify(stats)}`,
    );
    const statuses = Object.keys(stats.statuses as Record<string, number>).map(Number);
    // Both batches are longer than HTTP_MAX_URL_BYTES in their path alone (414); below it a batch
    // over API_MAX_BATCH_CALLS is a 400. Either way a 4xx before any call runs.
    assert.ok(statuses.length > 0 && statuses.every((s) => s === 414 || s === 400), statuses.join(','));
    const base = `http://127.0.0.1:${replica.port}/trpc/`;
    const auth = { authorization: `Bearer ${attacker.accessToken}` };
    const g60 = await fetch(base + Array(60).fill('auth.me').join(',') + '?batch=1', { headers: auth });
    assert.equal(g60.status, 400);
    assert.match(await g60.text(), /Batch call exceeds maximum size/);
    const p60 = await fetch(base + Array(60).fill('profiles.update').join(',') + '?batch=1', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify(Object.fromEntries(Array.from({ length: 60 }, (_, i) => [i, { displayName: `hacked ${i}` }]))),
    });
    assert.equal(p60.status, 400);
    assert.deepEqual(await attacker.client.auth.me.query(), before, 'no call of a refused batch ran');
    assert.ok(busy <= 2 * idle, `ping p50 ${busy.toFixed(3)} ms under batch flood vs ${idle.toFixed(3)} ms idle`);
    calm.close();
  });
});

// Each budget of the table holds, and going over it is RATE_LIMITED (tRPC TOO_MANY_REQUESTS),
// 4008 for a socket that keeps on, or the HTTP status, never a stall.
describe('hardening: work budgets (one replica, PGlite, small budgets)', () => {
  const replica = replicaPerSuite('pglite', {
    WS_RATE_PER_S: '5',
    WS_RATE_BURST: '10',
    WS_RESUME_EVENTS_PER_S: '10',
    WS_RESUME_EVENTS_BURST: '300',
    WS_RESUME_MAX_EVENTS: '200',
    API_RATE_PER_S: '1',
    API_RATE_BURST: '30',
    API_ANON_RATE_PER_S: '1',
    API_ANON_RATE_BURST: '40',
    API_HISTORY_ROWS_PER_S: '1',
    API_HISTORY_ROWS_BURST: '250',
    API_MAX_BATCH_CALLS: '10',
    HTTP_MAX_URL_BYTES: '2048',
    HTTP_MAX_HEADER_BYTES: '4096',
  });

  test('WS_RATE_PER_S/WS_RATE_BURST: frames of every type past the burst get RATE_LIMITED, a socket that keeps on gets 4008', async () => {
    const u = await newUser(replica.port, 'frames');
    const { c } = await connect(replica.port, u.accessToken, { resume: false });
    for (let i = 0; i < 40; i++) c.send({ type: 'ping', ref: `p${i}` });
    const closed = await c.closed;
    const pongs = c.frames.filter((f) => f.type === 'pong').length;
    const limited = c.frames.filter((f) => f.type === 'error' && f.code === 'RATE_LIMITED').length;
    assert.ok(pongs >= 9 && pongs <= 12, `${pongs} pongs for a burst of 10`);
    assert.ok(limited >= 10, `${limited} RATE_LIMITED`);
    assert.equal(closed.code, 4008);
  });

  test('WS_RESUME_EVENTS_*: resume is charged the events it replays, per user; over budget → RATE_LIMITED, nothing sent', async () => {
    const u = await newUser(replica.port, 'resume');
    const v = await newUser(replica.port, 'resume');
    const conv = (await u.client.conversations.createDirect.mutate({ userId: v.id })).id;
    await seed(replica, conv, u.id, 250);
    const { c } = await connect(replica.port, u.accessToken, { resume: false });
    const first = await c.request({ type: 'resume', convs: { [conv]: 0 } });
    assert.equal(first.type, 'resumed'); // 1 + 200 events (the rest as a gap)
    assert.equal(c.events(conv).length, 200);
    const second = await c.request({ type: 'resume', convs: { [conv]: 0 } });
    assert.equal(second.type, 'error');
    assert.equal(second.code, 'RATE_LIMITED');
    assert.equal(c.events(conv).length, 200, 'a refused resume sends nothing');
    // The budget is the user's: another socket of the same user is refused too.
    const { c: c2 } = await connect(replica.port, u.accessToken, { resume: false });
    const third = await c2.request({ type: 'resume', convs: { [conv]: 0 } });
    assert.equal(third.code, 'RATE_LIMITED');
    // A cheap resume (nothing missed) still fits.
    const cheap = await c2.request({ type: 'resume', convs: { [conv]: first.convs[conv] } });
    assert.equal(cheap.type, 'resumed');
    c.close();
    c2.close();
  });

  test('WS_RESUME_EVENTS_*: the client SDK asks again when its resume is refused for the budget, and ends with every event', async () => {
    const u = await newUser(replica.port, 'sdk');
    const v = await newUser(replica.port, 'sdk');
    const conv = (await u.client.conversations.createDirect.mutate({ userId: v.id })).id;
    await seed(replica, conv, u.id, 150);
    // Another socket of the same user spends most of the user's budget (300, refilling 10/s).
    const { c } = await connect(replica.port, u.accessToken, { resume: false });
    assert.equal((await c.request({ type: 'resume', convs: { [conv]: 0 } })).type, 'resumed');
    const client = new SocketClient({
      url: `ws://127.0.0.1:${replica.port}/ws`,
      getToken: () => u.accessToken,
      WebSocket: WebSocket as unknown as WebSocketCtor,
      initialSeqs: { [conv]: 0 },
    });
    const events: number[] = [];
    client.on('event', (e) => events.push(e.seq));
    const t0 = Date.now();
    await client.connect();
    const waited = Date.now() - t0;
    assert.ok(waited > 300, `the first resume was refused and asked again (${waited} ms)`);
    assert.deepEqual(
      events,
      Array.from({ length: 151 }, (_, i) => i + 1),
      'every event once, in order',
    );
    client.close();
    c.close();
  });

  test('API_RATE_*: each call of a batch costs the user one; past the burst → TOO_MANY_REQUESTS (429), another user unaffected', async () => {
    const u = await newUser(replica.port, 'api');
    // One call per request (under API_MAX_BATCH_CALLS), so only the per-user budget is in play.
    let ok = 0;
    const t0 = performance.now();
    for (let i = 0; i < 40; i++)
      if (
        await u.client.auth.me.query().then(
          () => true,
          () => false,
        )
      )
        ok++;
    // The bucket refills at API_RATE_PER_S (1/s) while the calls run: on a loaded machine they take seconds.
    const refilled = Math.ceil((performance.now() - t0) / 1000);
    assert.ok(ok >= 28 && ok <= 32 + refilled, `${ok} of 40 calls ran for a burst of 30 and ${refilled} s of refill`);
    assert.equal(await errorCode(u.client.auth.me.query()), 'TOO_MANY_REQUESTS');
    const v = await newUser(replica.port, 'api');
    assert.equal((await v.client.auth.me.query()).id, v.id);
  });

  test('API_HISTORY_ROWS_*: history is charged the rows asked for; past the budget → TOO_MANY_REQUESTS', async () => {
    const u = await newUser(replica.port, 'hist');
    const v = await newUser(replica.port, 'hist');
    const conv = (await u.client.conversations.createDirect.mutate({ userId: v.id })).id;
    await u.client.conversations.history.query({ conversationId: conv, limit: 100 });
    await u.client.conversations.history.query({ conversationId: conv, limit: 100 });
    assert.equal(await errorCode(u.client.conversations.history.query({ conversationId: conv, limit: 100 })), 'TOO_MANY_REQUESTS');
    assert.ok((await u.client.conversations.history.query({ conversationId: conv, limit: 10 })).events.length >= 1);
  });

  test('API_MAX_BATCH_CALLS: a batch over it is a 400 before any call runs', async () => {
    const u = await newUser(replica.port, 'batch');
    const base = `http://127.0.0.1:${replica.port}/trpc/`;
    const r = await fetch(base + Array(11).fill('profiles.update').join(',') + '?batch=1', {
      method: 'POST',
      headers: { authorization: `Bearer ${u.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(Object.fromEntries(Array.from({ length: 11 }, (_, i) => [i, { displayName: 'changed' }]))),
    });
    assert.equal(r.status, 400);
    assert.notEqual((await u.client.profiles.get.query({ userId: u.id })).displayName, 'changed');
  });

  test('HTTP_MAX_URL_BYTES / HTTP_MAX_HEADER_BYTES: 414 and 431 on /trpc and /ws', async () => {
    const u = await newUser(replica.port, 'http');
    const long = await fetch(`http://127.0.0.1:${replica.port}/trpc/auth.me?input=${'a'.repeat(3000)}`);
    assert.equal(long.status, 414);
    const fat = await fetch(`http://127.0.0.1:${replica.port}/trpc/auth.me`, { headers: { 'x-pad': 'b'.repeat(5000) } });
    assert.equal(fat.status, 431);
    assert.equal((await rawHttp(replica.port, upgradeRequest(u.accessToken, {}, `/ws?x=${'a'.repeat(3000)}`))).status, 414);
    assert.equal((await rawHttp(replica.port, upgradeRequest(u.accessToken, { 'X-Pad': 'b'.repeat(5000) }))).status, 431);
    assert.equal((await rawHttp(replica.port, upgradeRequest(u.accessToken))).status, 101);
  });
  test('API_ANON_RATE_*: calls without a session cost the IP; past the burst → TOO_MANY_REQUESTS', async () => {
    const anon = trpcClient(replica.port);
    const codes: string[] = [];
    for (let i = 0; i < 45; i++) codes.push(await errorCode(anon.auth.refresh.mutate({ refreshToken: `rt_nope_${i}_${'x'.repeat(20)}` })));
    assert.ok(codes.includes('TOO_MANY_REQUESTS'), codes.join(','));
    assert.ok(!codes.includes('INTERNAL_SERVER_ERROR'));
  });
});
