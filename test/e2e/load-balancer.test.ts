import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { testConfig } from '../../server/src/config.ts';
import { haproxyConfig, startHaproxy, type Haproxy, type Slot } from '../helpers/haproxy.ts';
import { freePort } from '../helpers/ports.ts';
import { spawnReplica, type ProcessReplica } from '../helpers/process-replica.ts';
import { startRedis, type RedisHandle } from '../helpers/redis.ts';
import { newUser, testEnv, type TestEnv } from '../helpers/server.ts';
import { connect } from '../helpers/ws.ts';

type User = Awaited<ReturnType<typeof newUser>>;

/** A socket opened through the balancer, and the hub it landed on. */
async function viaLb(lb: Haproxy, user: User) {
  const s = await connect(lb.port, user.accessToken);
  return { ...s, hub: String(s.headers['x-served-by']) };
}

/** HAProxy's durations (`1h`, `60s`, `500ms`, or bare ms) in ms. */
function durationMs(v: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(v);
  if (!m) throw new Error(`not a duration: ${v}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 'ms']!;
}

describe('deploy/haproxy.cfg on Debian haproxy in front of hub processes on one Redis and PostgreSQL', () => {
  let env: TestEnv;
  let lb: Haproxy;
  const slots: Slot[] = [];
  const hubs = new Map<string, ProcessReplica>();
  const startHub = async (slot: Slot, extra: Record<string, string> = {}) => {
    const p = await spawnReplica({ ...env.env, PORT: String(slot.port), REPLICA_ID: slot.name, TRUST_PROXY: 'true', ...extra });
    hubs.set(slot.name, p);
    return p;
  };

  before(async () => {
    env = await testEnv('postgres', { redis: true });
    for (const name of ['hub1', 'hub2', 'hub3']) slots.push({ name, port: await freePort() });
    await Promise.all([startHub(slots[0]!), startHub(slots[1]!)]);
    lb = await startHaproxy(slots);
    // The empty slot is found down by the checks; the two hubs stay up.
    await lb.state('hub3', 'DOWN');
  });
  after(async () => {
    await lb?.stop();
    await Promise.all([...hubs.values()].map((h) => h.kill('SIGKILL')));
    await env?.cleanup();
  });

  test('WebSocket upgrades and tRPC pass through; sockets spread over both hubs with no stickiness, and chat crosses hubs', async () => {
    const users: User[] = [];
    for (let i = 0; i < 6; i++) users.push(await newUser(lb.port, 'lb'));
    const conv = (await users[0]!.client.conversations.createGroup.mutate({ title: 'lb', memberIds: users.slice(1).map((u) => u.id) })).id;
    const sockets = await Promise.all(users.map((u) => viaLb(lb, u)));
    const on = (hub: string) => sockets.findIndex((s) => s.hub === hub);
    assert.ok(on('hub1') >= 0 && on('hub2') >= 0, `sockets on ${sockets.map((s) => s.hub)}`);
    const ack = await sockets[on('hub1')]!.c.request({ type: 'send', conv, cid: 'x1', body: 'across the balancer' });
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    const ev = await sockets[on('hub2')]!.c.next((f) => f.type === 'event' && f.conv === conv && f.kind === 'message');
    assert.equal(ev.seq, ack.seq);
    for (const s of sockets) s.c.close();
  });

  test('timeouts: an upgraded socket may idle well past the heartbeat and pong timeout; requests the hub could not answer are refused by HAProxy', async () => {
    const cfg = readFileSync(haproxyConfig, 'utf8');
    const timeout = (name: string) => durationMs(new RegExp(`^\\s*timeout ${name}\\s+(\\S+)`, 'm').exec(cfg)![1]!);
    const c = testConfig({});
    const silentMs = c.WS_HEARTBEAT_MS + c.WS_PONG_TIMEOUT_MS;
    // A socket is idle at most one heartbeat interval between pings; the hub drops it after silentMs.
    assert.ok(timeout('tunnel') >= 10 * silentMs, `timeout tunnel ${timeout('tunnel')} ms vs ${silentMs} ms`);
    assert.ok(timeout('client') > silentMs && timeout('server') > silentMs);
    // uWebSockets.js never answers a request with 50 header lines (the connection hangs): HAProxy answers 400 first.
    const headers: Record<string, string> = {};
    for (let i = 0; i < 50; i++) headers[`x-h${i}`] = 'v';
    const t0 = Date.now();
    assert.equal((await fetch(`${lb.url}/health`, { headers })).status, 400);
    assert.ok(Date.now() - t0 < 2000);
    assert.equal((await fetch(`${lb.url}/health`)).status, 200);
  });

  test('readiness: a hub whose /health/ready is 503 while it still listens gets no new sockets, and gets them again once ready', async () => {
    // hub3 on a Redis of its own, so that Redis can die under it alone.
    const redis: RedisHandle = await startRedis();
    try {
      const since = lb.logs.length;
      const hub3 = await startHub(slots[2]!, { REDIS_URL: redis.url });
      await lb.state('hub3', 'UP', since);
      // leastconn: the empty hub takes one of the next three sockets (on a tie, round robin).
      const first: Awaited<ReturnType<typeof viaLb>>[] = [];
      for (let i = 0; i < 3; i++) first.push(await viaLb(lb, await newUser(lb.port, 'rd')));
      assert.ok(
        first.some((s) => s.hub === 'hub3'),
        `sockets on ${first.map((s) => s.hub)}`,
      );

      const down = lb.logs.length;
      await redis.kill();
      const ready = await fetch(`http://127.0.0.1:${hub3.port}/health/ready`);
      assert.equal(ready.status, 503);
      await lb.state('hub3', 'DOWN', down);
      const during = await Promise.all(Array.from({ length: 6 }, async () => viaLb(lb, await newUser(lb.port, 'rd'))));
      assert.deepEqual(
        during.filter((s) => s.hub === 'hub3'),
        [],
        'no socket lands on the unready hub',
      );
      for (const s of [...first, ...during]) s.c.close();

      const up = lb.logs.length;
      await redis.start();
      await lb.state('hub3', 'UP', up);
      const back: Awaited<ReturnType<typeof viaLb>>[] = [];
      for (let i = 0; i < 3; i++) back.push(await viaLb(lb, await newUser(lb.port, 'rd')));
      assert.ok(
        back.some((s) => s.hub === 'hub3'),
        `sockets on ${back.map((s) => s.hub)}`,
      );
      for (const s of back) s.c.close();
    } finally {
      const since = lb.logs.length;
      await hubs.get('hub3')?.kill('SIGKILL');
      hubs.delete('hub3');
      await lb.state('hub3', 'DOWN', since);
      await redis.stop();
    }
  });

  test('draining: after SIGTERM a hub takes no new sockets; sockets opened meanwhile all land on the other hub; its own get 1012', async () => {
    const users: User[] = [];
    for (let i = 0; i < 12; i++) users.push(await newUser(lb.port, 'dr'));
    const open = await Promise.all(users.slice(0, 4).map((u) => viaLb(lb, u)));
    const onHub1 = open.filter((s) => s.hub === 'hub1');
    assert.ok(onHub1.length > 0, `sockets on ${open.map((s) => s.hub)}`);
    const hub1 = hubs.get('hub1')!;
    const since = lb.logs.length;
    hub1.child.kill('SIGTERM');
    // Once the hub has closed its listen socket, before HAProxy's checks have noticed: every
    // socket opened now is refused by hub1 and retried on hub2, none fails.
    await hub1.waitFor('draining');
    const during = await Promise.all(users.slice(4).map((u) => viaLb(lb, u)));
    assert.deepEqual(
      during.map((s) => s.hub),
      during.map(() => 'hub2'),
    );
    for (const s of onHub1) assert.equal((await s.c.closed).code, 1012);
    assert.equal(await hub1.exited, 0);
    await lb.state('hub1', 'DOWN', since);
    for (const s of [...open, ...during]) s.c.close();
  });
});
