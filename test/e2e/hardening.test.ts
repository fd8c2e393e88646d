import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { newUser, trpcClient, errorCode, replicaPerSuite, withReplica } from '../helpers/server.ts';
import { connect, type RawClient } from '../helpers/ws.ts';
import { metricValue, openRaw, rawHttp, until, upgradeRequest } from '../helpers/hardening.ts';

// What an outside attacker could do, each test covering a class of bug.
describe('hardening: connection bookkeeping, protocol edges, own messages read (one replica, PGlite)', () => {
  const LIMIT = 3;
  const replica = replicaPerSuite('pglite', { WS_MAX_CONNECTIONS_PER_USER: String(LIMIT), WS_RATE_BURST: '200', WS_RATE_PER_S: '200' });

  const gauge = () => metricValue(replica.metricsPort, 'hubbub_ws_connections');

  test('refused sockets keep no slot; the gauge equals the sockets really open after churn; a user can always reconnect', async () => {
    const u = await newUser(replica.port, 'churn');
    for (let round = 0; round < 4; round++) {
      const socks: RawClient[] = [];
      for (let i = 0; i < LIMIT + 2; i++) socks.push(await openRaw(replica.port, u.accessToken));
      const closes = await Promise.all(socks.slice(LIMIT).map((c) => c.closed));
      for (const cl of closes) assert.equal(cl.code, 4008, `round ${round}: the sockets over the limit are refused`);
      // The first LIMIT were admitted: each gets ready.
      for (const c of socks.slice(0, LIMIT)) await c.wait((f) => f.type === 'ready');
      await until(async () => (await gauge()) === LIMIT, 5000, `gauge ${LIMIT} in round ${round}`);
      for (const c of socks.slice(0, LIMIT)) c.close();
      await Promise.all(socks.map((c) => c.closed));
      await until(async () => (await gauge()) === 0, 5000, `gauge 0 after round ${round}`);
    }
    // Closed by the client during setup, before `ready` (no await between open and close).
    for (let i = 0; i < 10; i++) {
      const c = await openRaw(replica.port, u.accessToken);
      c.ws.terminate();
    }
    await until(async () => (await gauge()) === 0, 5000, 'gauge 0 after sockets closed during setup');
    const { c } = await connect(replica.port, u.accessToken);
    assert.equal(await gauge(), 1);
    c.close();
    await c.closed;
  });

  test('Sec-WebSocket-Version wrong or missing → 426 naming version 13; a bad Sec-WebSocket-Key → 400', async () => {
    const u = await newUser(replica.port, 'edges');
    const ok = await rawHttp(replica.port, upgradeRequest(u.accessToken));
    assert.equal(ok.status, 101);
    for (const v of ['8', '12', 'x', null]) {
      const r = await rawHttp(replica.port, upgradeRequest(u.accessToken, { 'Sec-WebSocket-Version': v }));
      assert.equal(r.status, 426, `version ${v}`);
      assert.equal((r as { headers: Record<string, string> }).headers['sec-websocket-version'], '13');
    }
    for (const key of ['short', 'not base64 at all but 24!', 'dGhlIHNhbXBsZSBub25jZQ', null, 'dGhlIHNhbXBsZSBub25jZQ==AAAA']) {
      const r = await rawHttp(replica.port, upgradeRequest(u.accessToken, { 'Sec-WebSocket-Key': key }));
      assert.equal(r.status, 400, `key ${key}`);
    }
    await until(async () => (await gauge()) === 0, 5000, 'gauge back to 0');
  });

  test('edit refuses a blank body as send does, and changes nothing', async () => {
    const a = await newUser(replica.port, 'ed');
    const b = await newUser(replica.port, 'ed');
    const conv = (await a.client.conversations.createDirect.mutate({ userId: b.id })).id;
    const { c } = await connect(replica.port, a.accessToken);
    await c.wait((f) => f.type === 'conversation' || f.type === 'resumed');
    const ack = await c.request({ type: 'send', conv, cid: 'e1', body: 'original' });
    assert.equal(ack.type, 'ack');
    for (const body of ['', '   ', '\n\t ']) {
      const sent = await c.request({ type: 'send', conv, cid: `blank-${body.length}`, body });
      assert.equal(sent.type, 'error');
      assert.equal(sent.code, 'BAD_REQUEST');
      const edited = await c.request({ type: 'edit', conv, seq: ack.seq, body });
      assert.equal(edited.type, 'error', `edit to ${JSON.stringify(body)}`);
      assert.equal(edited.code, 'BAD_REQUEST');
    }
    const hist = await a.client.conversations.history.query({ conversationId: conv });
    assert.deepEqual(
      hist.events.map((e: { kind: string }) => e.kind).filter((k: string) => k !== 'member'),
      ['message'],
    );
    c.close();
  });

  test("sending advances the sender's read cursor: 0 unread for them, their other device gets `read`", async () => {
    const a = await newUser(replica.port, 'own');
    const b = await newUser(replica.port, 'own');
    const conv = (await a.client.conversations.createDirect.mutate({ userId: b.id })).id;
    const { c: dev1 } = await connect(replica.port, a.accessToken);
    const { c: dev2 } = await connect(replica.port, a.accessToken);
    let last = 0;
    for (let i = 0; i < 5; i++) last = (await dev1.request({ type: 'send', conv, cid: `own-${i}`, body: `m${i}` })).seq;
    const read = await dev2.wait((f) => f.type === 'read' && f.conv === conv && f.user === a.id && f.seq === last);
    assert.equal(read.seq, last);
    const mine = (await a.client.conversations.list.query()).find((x: { id: string }) => x.id === conv)!;
    assert.equal(mine.unread, 0);
    const theirs = (await b.client.conversations.list.query()).find((x: { id: string }) => x.id === conv)!;
    // Theirs: everything up to the last seq (the conversation's `member` event and the 5 messages).
    assert.equal(theirs.unread, last);
    dev1.close();
    dev2.close();
  });

  test('/metrics?name=<unknown> is 404; a known name is 200', async () => {
    const unknown = await fetch(`http://127.0.0.1:${replica.metricsPort}/metrics?name=hubbub_no_such_metric`);
    assert.equal(unknown.status, 404);
    const known = await fetch(`http://127.0.0.1:${replica.metricsPort}/metrics?name=hubbub_ws_connections`);
    assert.equal(known.status, 200);
    assert.match(await known.text(), /hubbub_ws_connections/);
  });
});

describe('hardening: connection bookkeeping during a drain', () => {
  test('sockets closed by the drain, and one that opens during it, leave the gauge at the sockets really open (0)', async () => {
    await withReplica('pglite', {}, async (replica) => {
      const u = await newUser(replica.port, 'drain');
      const socks = await Promise.all([0, 1, 2].map(() => connect(replica.port, u.accessToken)));
      assert.equal(await metricValue(replica.metricsPort, 'hubbub_ws_connections'), 3);
      // The hub drains while the listen socket is still open (as between SIGTERM and the close).
      await replica.hub.drain(0);
      for (const { c } of socks) assert.equal((await c.closed).code, 1012);
      const late = await openRaw(replica.port, u.accessToken);
      assert.equal((await late.closed).code, 1012, 'a socket opened during the drain is sent away, not kept');
      await until(async () => (await metricValue(replica.metricsPort, 'hubbub_ws_connections')) === 0, 5000, 'gauge 0 after the drain');
      assert.equal(replica.hub.connectionCount, 0);
    });
  });
});

describe('hardening: the per-account login throttle is keyed by the account', () => {
  const replica = replicaPerSuite('pglite', { LOGIN_MAX_PER_ACCOUNT: '4', TRUST_PROXY: 'true' });

  const from = (ip: string) => {
    const c = trpcClient(replica.port);
    return {
      login: (login: string, password: string) =>
        fetch(`http://127.0.0.1:${replica.port}/trpc/auth.login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
          body: JSON.stringify({ login, password }),
        }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error?: { message: string; data: { code: string } } } })),
      c,
    };
  };

  test('wrong passwords by username then by email (another address) share one budget; unknown logins are throttled too, with the same generic error', async () => {
    const u = await newUser(replica.port, 'thr');
    const email = `${u.username}@example.com`;
    const one = from('10.0.0.1');
    const two = from('10.0.0.2');
    for (let i = 0; i < 2; i++) assert.equal((await one.login(u.username, 'wrong password')).body.error?.data.code, 'UNAUTHORIZED');
    for (let i = 0; i < 2; i++)
      assert.equal((await two.login(email.toUpperCase(), 'wrong password')).body.error?.data.code, 'UNAUTHORIZED');
    const fifth = await from('10.0.0.3').login(email, u.password);
    assert.equal(fifth.status, 429, 'the fifth attempt on the account is throttled, whatever was typed and from wherever');
    assert.equal(fifth.body.error?.data.code, 'TOO_MANY_REQUESTS');
    // An unknown login: the same generic UNAUTHORIZED as a wrong password, then throttled by what was typed.
    const ghost = from('10.0.0.4');
    const first = await ghost.login('nobody_here', 'whatever pw');
    assert.equal(first.body.error?.data.code, 'UNAUTHORIZED');
    assert.equal(first.body.error?.message, (await from('10.0.0.9').login(u.username + 'x', 'wrong password')).body.error?.message);
    for (let i = 0; i < 3; i++) await ghost.login('nobody_here', 'whatever pw');
    assert.equal((await from('10.0.0.5').login('NOBODY_HERE', 'whatever pw')).status, 429);
    // Another account is not affected.
    const v = await newUser(replica.port, 'thr');
    assert.equal((await one.login(v.username, v.password)).status, 200);
    assert.equal(
      await errorCode(trpcClient(replica.port).auth.login.mutate({ login: u.username, password: u.password })),
      'TOO_MANY_REQUESTS',
    );
  });
});
