/**
 * The load generator (load-tests/gen) end to end, in its forked processes: against the bare
 * uWS peer it delivers every acknowledged message to every member exactly once and in order,
 * with a latency for each; against a small server of this test that duplicates, drops or
 * reorders deliveries, its checks count exactly that. Also the connect job's progress timeline.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { runGenerator, shares, type ConnectJob, type FanoutJob, type Job } from '../../load-tests/gen/runner.ts';
import { startPeer, type ServerSet } from '../../load-tests/harness/servers.ts';
import { AccessTokens } from '../../server/src/auth/tokens.ts';

const secret = randomBytes(32).toString('base64url');
const dir = mkdtempSync(path.join(os.tmpdir(), 'loadgen-test-'));
const seedFile = path.join(dir, 'seed.json');
const users: { id: string; u: string; t: string }[] = [];
const rooms: { id: string; m: number[] }[] = [];

before(async () => {
  const tokens = new AccessTokens(secret, { issuer: 'hubbub', audience: 'hubbub', ttlSeconds: 3600 });
  for (let i = 0; i < 24; i++) {
    const id = randomUUID();
    users.push({ id, u: `u${i}`, t: await tokens.sign({ sub: id, sid: randomUUID() }) });
  }
  for (let r = 0; r < 4; r++) rooms.push({ id: randomUUID(), m: [0, 1, 2, 3, 4, 5].map((k) => r * 6 + k) });
  writeFileSync(seedFile, JSON.stringify({ password: 'x', users, rooms, prooms: [] }));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function fanoutJobs(
  urls: string[],
  proto: FanoutJob['proto'],
  rate: number,
  durationS: number,
): Omit<FanoutJob & Job, 'worker' | 'addresses'>[] {
  return shares(
    rooms.map((r, i) => ({ r, i })),
    2,
  ).map((share) => ({
    kind: 'fanout',
    proto,
    rooms: share.map(({ r, i }) => ({
      id: r.id,
      members: r.m.map((ui, k) => ({ url: urls[(i + k) % urls.length]!, token: users[ui]!.t })),
    })),
    mode: 'rate',
    rate: (rate * share.length) / rooms.length,
    window: 0,
    senders: 'rotate',
    durationS,
    drainS: 5,
    bodySize: 80,
    runId: randomBytes(3).toString('hex'),
    connectTimeoutS: 20,
    handshakeTimeoutMs: 10_000,
  }));
}

/**
 * A tiny server speaking the generator's protocol subset, with one fault: `dup` sends member
 * 1 of each room every event twice; `drop` never delivers seq 3 to member 1; `none` is honest.
 */
async function faultyServer(fault: 'none' | 'dup' | 'drop') {
  const members = new Map<string, WebSocket[]>();
  const seqs = new Map<string, number>();
  const roomOf = new Map(rooms.flatMap((r) => r.m.map((ui, k) => [users[ui]!.t, { room: r.id, k }] as const)));
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  wss.on('connection', (ws, req) => {
    const token = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
    const me = roomOf.get(token);
    if (!me) return ws.close(4001);
    const list = members.get(me.room) ?? [];
    list[me.k] = ws;
    members.set(me.room, list);
    ws.send(JSON.stringify({ type: 'ready', convs: { [me.room]: 0 } }));
    ws.on('message', (data) => {
      const f = JSON.parse(String(data)) as { type: string; ref?: string; conv: string; body: string; cid: string };
      if (f.type === 'resume') return ws.send(JSON.stringify({ type: 'resumed', ref: f.ref, convs: {} }));
      if (f.type !== 'send') return;
      const seq = (seqs.get(f.conv) ?? 0) + 1;
      seqs.set(f.conv, seq);
      const ev = JSON.stringify({ body: f.body, type: 'event', conv: f.conv, seq, kind: 'message', cid: f.cid });
      (members.get(f.conv) ?? []).forEach((m, k) => {
        if (fault === 'drop' && k === 1 && seq === 3) return;
        m.send(ev);
        if (fault === 'dup' && k === 1) m.send(ev);
      });
      ws.send(JSON.stringify({ type: 'ack', conv: f.conv, cid: f.cid, seq, ref: f.ref }));
    });
  });
  await new Promise((r) => wss.once('listening', r));
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/ws`;
  return { url, close: () => new Promise((r) => wss.close(r)) };
}

describe('load generator', () => {
  let peer: ServerSet;
  before(async () => {
    peer = await startPeer('uws', { SEED_FILE: seedFile, JWT_SECRET: secret });
  });
  after(() => peer.stop());

  it('fanout against bare uWS: every acked message reaches every member once, in order, each with a latency', async () => {
    const r = await runGenerator({ jobs: fanoutJobs(peer.urls, 'uws', 40, 1.5), timeoutMs: 60_000 });
    const c = r.counters;
    assert.equal(r.generator.processes, 2);
    assert.ok(c.fanout_acked! >= 50, `acked ${c.fanout_acked}`); // 40/s for 1.5 s, open loop
    assert.equal(c.fanout_sent, c.fanout_acked);
    assert.equal(c.fanout_delivered, c.fanout_acked! * 6);
    for (const k of [
      'fanout_lost',
      'fanout_duplicates',
      'fanout_out_of_order',
      'fanout_unacked',
      'fanout_connect_failed',
      'fanout_send_errors',
    ])
      assert.equal(c[k], 0, k);
    assert.equal(r.hists.fanout_latency!.count, c.fanout_delivered);
    assert.ok(r.hists.fanout_latency!.p50 > 0 && r.hists.fanout_latency!.p50 < 5000);
    assert.equal(r.hists.fanout_send_lateness!.count, c.fanout_sent);
    assert.ok(r.generator.windowCpuS > 0 && r.generator.totalCpuS >= r.generator.windowCpuS);
    assert.ok(r.released.ready! > 0);
  });

  it('connect against bare uWS: every socket resumed, the timeline counts each once', async () => {
    const u = peer.urls;
    const sockets = users.map((x, i) => ({ url: u[i % u.length]!, token: x.t }));
    let heldAtBarrier = 0;
    const jobs: Omit<ConnectJob & Job, 'worker' | 'addresses'>[] = shares(sockets, 2).map((share) => ({
      kind: 'connect',
      proto: 'uws',
      sockets: share,
      connectTimeoutS: 20,
      handshakeTimeoutMs: 10_000,
    }));
    const r = await runGenerator({
      jobs,
      timeoutMs: 60_000,
      onBarrier: async (name) => {
        if (name.startsWith('connected')) heldAtBarrier = await peer.connections();
      },
    });
    assert.equal(r.counters.connect_ok, users.length);
    assert.equal(r.counters.connect_failed, 0);
    assert.equal(heldAtBarrier, users.length);
    assert.equal(
      r.timeline.reduce((a, b) => a + b, 0),
      users.length,
    );
    assert.equal(r.hists.connect_time!.count, users.length);
  });

  it('counts duplicates a server sends', async () => {
    const s = await faultyServer('dup');
    try {
      const r = await runGenerator({ jobs: fanoutJobs([s.url], 'ws', 40, 1), timeoutMs: 60_000 });
      // Member 1 of every room gets each event twice.
      assert.equal(r.counters.fanout_duplicates, r.counters.fanout_acked);
      assert.equal(r.counters.fanout_out_of_order, 0);
    } finally {
      await s.close();
    }
  });

  it('counts a delivery a server drops as lost and the next one as out of order', async () => {
    const s = await faultyServer('drop');
    try {
      const r = await runGenerator({ jobs: fanoutJobs([s.url], 'ws', 40, 1.5), timeoutMs: 60_000 });
      // Every room reached seq 3 (≥ 12 sends per room), and member 1 never got it.
      assert.equal(r.counters.fanout_lost, rooms.length);
      assert.equal(r.counters.fanout_out_of_order, rooms.length);
      assert.equal(r.counters.fanout_duplicates, 0);
    } finally {
      await s.close();
    }
  });

  it('an honest server passes the same checks', async () => {
    const s = await faultyServer('none');
    try {
      const r = await runGenerator({ jobs: fanoutJobs([s.url], 'ws', 40, 1), timeoutMs: 60_000 });
      assert.ok(r.counters.fanout_acked! > 0);
      assert.equal(r.counters.fanout_delivered, r.counters.fanout_acked! * 6);
      assert.equal(r.counters.fanout_lost! + r.counters.fanout_duplicates! + r.counters.fanout_out_of_order!, 0);
    } finally {
      await s.close();
    }
  });
});
