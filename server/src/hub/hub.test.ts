import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { channels } from '../bus/bus.ts';
import { MemoryBus } from '../bus/bus.memory.ts';
import { openDatabase, type Database } from '../db/database.ts';
import { createLogger } from '../observability/logger.ts';
import { createMetrics } from '../observability/metrics.ts';
import { PostgresMessageStore } from '../store/message-store.postgres.ts';
import type { SocketLike } from './connection.ts';
import { Hub } from './hub.ts';
import type { MembershipDirectory } from './ports.ts';
import { MemoryPresence } from '../presence/presence.memory.ts';
import { busEvent, encodeEvent } from './wire.ts';

/** Unit layer: the hub on its in-process adapters (PGlite in memory, the memory bus). */

class FakeSocket implements SocketLike {
  frames: any[] = [];
  closedWith: number | null = null;
  private waiters: (() => void)[] = [];
  send(message: string | Uint8Array) {
    this.frames.push(JSON.parse(typeof message === 'string' ? message : Buffer.from(message).toString()));
    for (const w of this.waiters.splice(0)) w();
    return 1;
  }
  getBufferedAmount() {
    return 0;
  }
  end(code?: number) {
    this.closedWith = code ?? 1000;
  }
  /** Resolves once `pred` holds over the frames received. */
  until(pred: (frames: any[]) => boolean, timeoutMs = 10_000): Promise<void> {
    if (pred(this.frames)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timeout; got ${this.frames.length} frames`)), timeoutMs);
      const check = () => (pred(this.frames) ? (clearTimeout(t), resolve()) : this.waiters.push(check));
      this.waiters.push(check);
    });
  }
}

/** A socket with uWS's cork: records which frames left inside which cork call. */
class CorkingSocket extends FakeSocket {
  private corking = 0;
  corks: string[][] = [];
  uncorked: string[] = [];
  cork(cb: () => void) {
    this.corks.push([]);
    this.corking++;
    try {
      cb();
    } finally {
      this.corking--;
    }
  }
  override send(message: string | Uint8Array) {
    const r = super.send(message);
    const f = this.frames.at(-1);
    const label = f.type === 'event' ? `event ${f.seq}` : f.type === 'presence' ? `presence ${f.user}` : f.type;
    if (this.corking) this.corks.at(-1)!.push(label);
    else this.uncorked.push(label);
    return r;
  }
}

/** A seeded PRNG (mulberry32), so a failing interleaving can be replayed. */
function rng(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('hub on its in-process adapters', () => {
  let database: Database;
  before(async () => {
    database = await openDatabase({ dataDir: 'unused', memory: true });
    await database.migrate();
  });
  after(async () => database?.close());

  function makeHub(convsOf: Record<string, string[]>) {
    const store = new PostgresMessageStore(database);
    const bus = new MemoryBus();
    const directory: MembershipDirectory = {
      conversationsOf: async (u) => convsOf[u] ?? [],
      markRead: async (_c, _u, seq) => seq,
      readCursors: async () => ({}),
      access: async (u, cs) => new Map(cs.filter((c) => (convsOf[u] ?? []).includes(c)).map((c) => [c, {}])),
      liveSessions: async (_u, ids) => new Set(ids),
      summary: async (id) => ({ id, kind: 'group', title: null, topic: null, members: [], createdAt: new Date(0).toISOString() }),
    };
    const metrics = createMetrics({ collectDefault: false });
    const hub = new Hub({
      store,
      bus,
      presence: new MemoryPresence(),
      directory,
      logger: createLogger({ level: 'silent', replicaId: 'unit' }),
      metrics,
      limits: {
        maxBodyChars: 4000,
        ratePerS: 1000,
        burst: 1000,
        maxConnectionsPerUser: 10,
        heartbeatMs: 25_000,
        maxBuffered: 1 << 20,
        resumeMaxEvents: 1000,
        resumeHoldMs: 0,
        announcedResumeHoldMs: 10_000,
        presenceGraceMs: 0,
      },
    });
    /** What the upgrade does: watch the user's channel, read the login snapshot, attach. */
    const open = async (sock: SocketLike, user: string, opts: { resumeAnnounced?: boolean; contacts?: string[] } = {}) => {
      const watch = await hub.watchUser(user);
      const login = {
        user: { id: user, sessionId: randomUUID() },
        info: { id: user, username: 'u', displayName: 'u' },
        convs: convsOf[user] ?? [],
        contacts: opts.contacts ?? [],
      };
      return hub.attach(sock, login, watch, opts);
    };
    return { hub, store, bus, open, metrics };
  }

  for (const seed of [1, 7, 42, 1234, 99_999]) {
    test(`5.2 seeded ${seed}: another replica's events arriving shuffled, some lost, reach the socket once each, in seq order`, async () => {
      const conv = randomUUID();
      const user = randomUUID();
      const { hub, store, bus, open } = makeHub({ [user]: [conv] });
      const sock = new FakeSocket();
      await open(sock, user);
      await sock.until((f) => f.some((x) => x.type === 'ready'));
      // Another replica appends 120 events; its publishes reach this hub out of order, 10% lost.
      const next = rng(seed);
      const results = [];
      for (let i = 0; i < 12; i++) {
        const drafts = Array.from({ length: 10 }, (_, k) => ({
          id: randomUUID(),
          kind: 'message' as const,
          from: randomUUID(),
          ts: Date.now(),
          data: { body: `m${i * 10 + k}` },
        }));
        results.push(...(await store.append(conv, drafts)));
      }
      const published = results.map((r) => r.event).sort(() => next() - 0.5);
      for (const e of published) {
        if (next() < 0.1) continue; // lost on the bus
        await bus.publish(channels.conv(conv), busEvent(e.seq, e.ts, encodeEvent(e)));
        if (next() < 0.3) await new Promise((r) => setImmediate(r));
      }
      await sock.until((f) => f.filter((x) => x.type === 'event').length >= 120);
      const seqs = sock.frames.filter((x) => x.type === 'event').map((x) => x.seq);
      assert.deepEqual(
        seqs,
        Array.from({ length: 120 }, (_, i) => i + 1),
      );
      hub.stop();
    });
  }

  test('5.4 concurrent sends with the same cid on one hub store one message and ack both with it', async () => {
    const conv = randomUUID();
    const user = randomUUID();
    const { hub, store, open } = makeHub({ [user]: [conv] });
    const sock = new FakeSocket();
    const conn = await open(sock, user);
    await sock.until((f) => f.some((x) => x.type === 'ready'));
    for (let i = 0; i < 5; i++) hub.handle(conn, { type: 'send', ref: `r${i}`, conv, cid: 'same', body: `try ${i}` });
    await sock.until((f) => f.filter((x) => x.type === 'ack').length === 5);
    const acks = sock.frames.filter((x) => x.type === 'ack');
    assert.equal(new Set(acks.map((a) => a.seq)).size, 1);
    assert.equal((await store.read(conv, { afterSeq: 0, limit: 10 })).length, 1);
    assert.equal(sock.frames.filter((x) => x.type === 'event').length, 1);
    hub.stop();
  });

  test('a send is timed at every stage, once per event: append, publish, bus, write to the sockets, and in total', async () => {
    const conv = randomUUID();
    const [a, b] = [randomUUID(), randomUUID()];
    const { hub, open, metrics } = makeHub({ [a]: [conv], [b]: [conv] });
    const [sa, sb] = [new FakeSocket(), new FakeSocket()];
    const ca = await open(sa, a);
    await open(sb, b);
    await Promise.all([sa, sb].map((s) => s.until((f) => f.some((x) => x.type === 'ready'))));
    for (let i = 0; i < 3; i++) hub.handle(ca, { type: 'send', ref: `r${i}`, conv, cid: `c${i}`, body: `m${i}` });
    await sb.until((f) => f.filter((x) => x.type === 'event').length === 3);
    // The memory bus echoes to this hub as Redis does: its own events are heard (and dropped) once.
    await new Promise((r) => setImmediate(r));
    const text = await metrics.registry.getSingleMetricAsString('hubbub_send_stage_seconds');
    const counts = Object.fromEntries(
      [...text.matchAll(/^hubbub_send_stage_seconds_count\{stage="(\w+)"\} (\S+)$/gm)].map((m) => [m[1], Number(m[2])]),
    );
    assert.deepEqual(counts, { append: 3, publish: 3, bus: 3, write: 3, total: 3 });
    hub.stop();
  });

  test('4 a conversation added or removed between the login snapshot and the open reaches the socket', async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const user = randomUUID();
    const { hub, bus, store } = makeHub({ [user]: [a] });
    const sock = new FakeSocket();
    // The upgrade watched the user's channel and read the snapshot (member of a only) ...
    const watch = await hub.watchUser(user);
    const login = {
      user: { id: user, sessionId: randomUUID() },
      info: { id: user, username: 'u', displayName: 'u' },
      convs: [a],
      contacts: [],
    };
    // ... then, before the socket opened, a was left and b joined.
    const removed = JSON.stringify({ type: 'conversation', op: 'removed', conversation: { id: a } });
    const added = JSON.stringify({ type: 'conversation', op: 'added', conversation: { id: b } });
    await hub.controlUser(user, { k: 'removed', conv: a, frame: removed });
    await hub.controlUser(user, { k: 'added', conv: b, fromSeq: 0, frame: added });
    await new Promise((r) => setImmediate(r));
    const conn = hub.attach(sock, login, watch);
    await sock.until((f) => f.some((x) => x.op === 'added'));
    assert.deepEqual(
      sock.frames.map((x) => x.type + (x.op ? ':' + x.op : '')),
      ['ready', 'conversation:removed', 'conversation:added'],
    );
    assert.deepEqual([...conn.convs.keys()], [b]);
    // Live from here: b's events reach the socket, a's do not.
    hub.handle(conn, { type: 'resume', ref: 'r', convs: {} });
    for (const c of [a, b]) {
      const [r] = await store.append(c, [{ id: randomUUID(), kind: 'message', from: randomUUID(), ts: Date.now(), data: { body: 'hi' } }]);
      await bus.publish(channels.conv(c), busEvent(r!.event.seq, r!.event.ts, encodeEvent(r!.event)));
    }
    await sock.until((f) => f.some((x) => x.type === 'event'));
    assert.deepEqual(
      sock.frames.filter((x) => x.type === 'event').map((x) => x.conv),
      [b],
    );
    hub.stop();
  });

  test('3 read-your-writes: a membership change sent with controlUsers resolves only once the socket acts on it', async () => {
    const conv = randomUUID();
    const user = randomUUID();
    const { hub, open } = makeHub({ [user]: [] });
    const sock = new FakeSocket();
    const conn = await open(sock, user);
    await sock.until((f) => f.some((x) => x.type === 'ready'));
    const frame = (op: string) => JSON.stringify({ type: 'conversation', op, conversation: { id: conv } });
    await hub.controlUsers([user], { k: 'added', conv, fromSeq: 0, frame: frame('added') });
    assert.ok(conn.convs.has(conv), 'joined when the call resolves');
    assert.deepEqual(
      sock.frames.filter((x) => x.type === 'conversation').map((x) => x.op),
      ['added'],
    );
    await hub.controlUsers([user], { k: 'removed', conv, frame: frame('removed') });
    assert.ok(!conn.convs.has(conv), 'left when the call resolves');
    hub.stop();
  });

  test("3 a frame for a conversation the socket does not know asks the directory: a member's sends are accepted in order, a stranger's refused; the late `added` still announces it once", async () => {
    const conv = randomUUID();
    const foreign = randomUUID();
    const user = randomUUID();
    const convsOf: Record<string, string[]> = { [user]: [] };
    const { hub, open } = makeHub(convsOf);
    const sock = new FakeSocket();
    const conn = await open(sock, user);
    await sock.until((f) => f.some((x) => x.type === 'ready'));
    // Added in the database; the bus message has not come.
    convsOf[user] = [conv];
    for (let i = 0; i < 3; i++) hub.handle(conn, { type: 'send', ref: `r${i}`, conv, cid: `c${i}`, body: `m${i}` });
    hub.handle(conn, { type: 'send', ref: 'x', conv: foreign, cid: 'x', body: 'nope' });
    await sock.until((f) => f.filter((x) => x.type === 'ack').length === 3 && f.some((x) => x.ref === 'x'));
    assert.deepEqual(
      sock.frames.filter((x) => x.type === 'ack').map((x) => [x.ref, x.seq]),
      [
        ['r0', 1],
        ['r1', 2],
        ['r2', 3],
      ],
    );
    assert.equal(sock.frames.find((x) => x.ref === 'x').code, 'FORBIDDEN');
    // Live in it: its own events reach it once each.
    await sock.until((f) => f.filter((x) => x.type === 'event').length === 3);
    const added = JSON.stringify({ type: 'conversation', op: 'added', conversation: { id: conv } });
    await hub.controlUsers([user], { k: 'added', conv, fromSeq: 0, frame: added });
    await hub.controlUsers([user], { k: 'added', conv, fromSeq: 0, frame: added });
    assert.equal(sock.frames.filter((x) => x.type === 'conversation').length, 1, 'announced once');
    assert.deepEqual(
      sock.frames.filter((x) => x.type === 'event').map((x) => x.seq),
      [1, 2, 3],
    );
    hub.stop();
  });

  test('6 a session revoked between the login snapshot and the open closes the socket with 4001', async () => {
    const user = randomUUID();
    const sessionId = randomUUID();
    const { hub } = makeHub({});
    const sock = new FakeSocket();
    const watch = await hub.watchUser(user);
    await hub.controlUser(user, { k: 'revoke', sessions: [sessionId] });
    await new Promise((r) => setImmediate(r));
    hub.attach(
      sock,
      { user: { id: user, sessionId }, info: { id: user, username: 'u', displayName: 'u' }, convs: [], contacts: [] },
      watch,
    );
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(sock.closedWith, 4001);
    hub.stop();
  });

  /** Two members of one conversation that already holds seqs 1–3 (the resume tests). */
  async function resumeSetup() {
    const conv = randomUUID();
    const [other, user] = [randomUUID(), randomUUID()];
    const made = makeHub({ [other]: [conv], [user]: [conv] });
    const draft = (i: number) => ({ id: randomUUID(), kind: 'message' as const, from: other, ts: Date.now(), data: { body: `m${i}` } });
    for (let i = 0; i < 3; i++) await made.store.append(conv, [draft(i)]);
    return { conv, other, user, draft, ...made };
  }

  /** The event seqs and the `resumed` head a socket got, in the order it got them. */
  const eventsThenResumed = (sock: FakeSocket, conv: string) =>
    sock.frames
      .filter((x) => x.type === 'event' || x.type === 'resumed')
      .map((x) => (x.type === 'event' ? x.seq : `resumed ${x.convs[conv]}`));

  test('5.3 a resume already waiting when the hold expires wins over it: no live event overtakes the missed ones', async () => {
    const { conv, other, user, hub, store, bus, open, draft } = await resumeSetup();
    // Another socket keeps the feed at seq 3; seq 4 is stored, its bus message not yet delivered.
    const first = new FakeSocket();
    await open(first, other);
    await first.until((f) => f.some((x) => x.type === 'ready'));
    const [r4] = await store.append(conv, [draft(3)]);
    const sock = new FakeSocket();
    const conn = await open(sock, user);
    await sock.until((f) => f.some((x) => x.type === 'ready'));
    while (!conn.holdTimer) await Promise.resolve();
    // One loop turn in which the hold (0 ms here) expires, then seq 4 arrives by the bus, then the
    // client's resume from seq 1 is read.
    setTimeout(() => {
      void bus.publish(channels.conv(conv), busEvent(4, Date.now(), encodeEvent(r4!.event)));
      queueMicrotask(() => queueMicrotask(() => hub.handle(conn, { type: 'resume', ref: 'r', convs: { [conv]: 1 } })));
    }, 0);
    const until = Date.now() + 5;
    while (Date.now() < until); // a busy turn: both timers are due when it ends
    await sock.until((f) => f.some((x) => x.type === 'resumed'));
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(eventsThenResumed(sock, conv), [2, 3, 4, 'resumed 4']);
    hub.stop();
  });

  test('5.3 a socket that announced its resume (/ws?resume=1) gets no live event before it, however late the resume comes', async () => {
    const { conv, other, user, hub, store, bus, open, draft } = await resumeSetup();
    const first = new FakeSocket();
    await open(first, other); // no announcement: live once the (0 ms) hold has passed
    const sock = new FakeSocket();
    const conn = await open(sock, user, { resumeAnnounced: true });
    await sock.until((f) => f.some((x) => x.type === 'ready'));
    await new Promise((r) => setTimeout(r, 30)); // well past the plain hold
    const [r4] = await store.append(conv, [draft(3)]);
    await bus.publish(channels.conv(conv), busEvent(4, Date.now(), encodeEvent(r4!.event)));
    await first.until((f) => f.some((x) => x.type === 'event' && x.seq === 4));
    assert.deepEqual(
      sock.frames.filter((x) => x.type === 'event'),
      [],
      'no live event before the resume',
    );
    hub.handle(conn, { type: 'resume', ref: 'r', convs: { [conv]: 1 } });
    await sock.until((f) => f.some((x) => x.type === 'resumed'));
    assert.deepEqual(eventsThenResumed(sock, conv), [2, 3, 4, 'resumed 4']);
    hub.stop();
  });

  test('a presence snapshot and a catch-up page each leave in one write (one cork), not a syscall per frame', async () => {
    const { conv, other, user, hub, open } = await resumeSetup();
    const first = new FakeSocket();
    await open(first, other);
    await first.until((f) => f.some((x) => x.type === 'ready'));
    const third = randomUUID();
    await open(new FakeSocket(), third);
    const sock = new CorkingSocket();
    const conn = await open(sock, user, { resumeAnnounced: true, contacts: [other, third] });
    await sock.until((f) => f.filter((x) => x.type === 'presence').length === 2);
    hub.handle(conn, { type: 'resume', ref: 'r', convs: { [conv]: 0 } });
    await sock.until((f) => f.some((x) => x.type === 'resumed'));
    assert.ok(
      sock.corks.some((c) => c.length === 2 && c.every((l) => l.startsWith('presence'))),
      JSON.stringify(sock.corks),
    );
    assert.ok(
      sock.corks.some((c) => c.join() === 'event 1,event 2,event 3'),
      JSON.stringify(sock.corks),
    );
    assert.ok(!sock.uncorked.some((l) => l.startsWith('event') || l.startsWith('presence')), JSON.stringify(sock.uncorked));
    hub.stop();
  });
});
