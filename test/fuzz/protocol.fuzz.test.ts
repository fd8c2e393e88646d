import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { clientFrameTypes } from '../../server/src/protocol/frames.ts';
import { newUser, replicaPerSuite } from '../helpers/server.ts';
import { connect, type RawClient } from '../helpers/ws.ts';
import { metricValue, openRaw, pingMs } from '../helpers/hardening.ts';
import { fuzzSettings, hostileValue } from './fuzz-seed.ts';

const PING_BOUND_MS = Number(process.env.FUZZ_PING_BOUND_MS ?? 1000);

// Every client frame type, valid, invalid and adversarial, from one attacker socket per run.
// After each run: no INTERNAL, the hub alive, the gauge equal to the sockets really open, the
// victim's conversation unchanged, and a healthy client's pings under a bound throughout.
describe('fuzz: WebSocket frames', () => {
  const replica = replicaPerSuite('pglite', { WS_RATE_PER_S: '2000', WS_RATE_BURST: '2000', WS_MAX_BODY_CHARS: '2000' });

  test('frames of every type: no INTERNAL, no crash, exact gauge, nothing of others changed, pings bounded', async () => {
    const attacker = await newUser(replica.port, 'fz');
    const friend = await newUser(replica.port, 'fz');
    const victim = await newUser(replica.port, 'fz');
    const third = await newUser(replica.port, 'fz');
    const own = (await attacker.client.conversations.createGroup.mutate({ title: 'fuzz', memberIds: [friend.id] })).id;
    const foreign = (await victim.client.conversations.createDirect.mutate({ userId: third.id })).id;
    const { c: vc } = await connect(replica.port, victim.accessToken);
    await vc.request({ type: 'send', conv: foreign, cid: 'v1', body: 'private' });
    vc.close();
    const snapshot = async () => JSON.stringify(await victim.client.conversations.history.query({ conversationId: foreign }));
    const before = await snapshot();
    const { c: healthy } = await connect(replica.port, friend.accessToken);

    const ids = [own, foreign, attacker.id, victim.id];
    const v = hostileValue(ids);
    const conv = fc.oneof({ weight: 4, arbitrary: fc.constant(own) }, fc.constant(foreign), fc.uuid(), v);
    const seq = fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 0, max: 40 }) }, v);
    const body = fc.oneof(
      { weight: 3, arbitrary: fc.string({ minLength: 1, maxLength: 30 }) },
      fc.constantFrom('', '   ', 'x'.repeat(2001)),
      v,
    );
    const ref = fc.option(fc.oneof(fc.string({ minLength: 1, maxLength: 10 }), fc.constant('r'.repeat(65)), v), { nil: undefined });
    const types = [...clientFrameTypes];
    // Well-formed frames of each type (most aimed at the attacker's own conversation).
    const valid = fc.oneof(
      fc.record({
        type: fc.constant('send'),
        ref,
        conv,
        cid: fc.string({ minLength: 1, maxLength: 64 }),
        body: fc.string({ minLength: 1, maxLength: 30 }),
      }),
      fc.record({
        type: fc.constant('edit'),
        ref,
        conv,
        seq: fc.integer({ min: 1, max: 40 }),
        body: fc.string({ minLength: 1, maxLength: 30 }),
      }),
      fc.record({ type: fc.constant('delete'), ref, conv, seq: fc.integer({ min: 1, max: 40 }) }),
      fc.record({
        type: fc.constant('react'),
        ref,
        conv,
        seq: fc.integer({ min: 1, max: 40 }),
        emoji: fc.constantFrom('👍', '🎉', 'x'),
        on: fc.boolean(),
      }),
      fc.record({ type: fc.constant('read'), conv, seq: fc.integer({ min: 0, max: 100 }) }),
      fc.record({ type: fc.constant('typing'), conv }),
      fc.record({
        type: fc.constant('resume'),
        ref,
        convs: fc.dictionary(fc.constantFrom(own, foreign), fc.integer({ min: 0, max: 50 }), { maxKeys: 2 }),
      }),
      fc.record({ type: fc.constant('ping'), ref }),
    );
    // Every field of every type, each possibly missing, wrong or hostile, plus unknown fields.
    const fuzzed = fc.record(
      {
        type: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...types) }, v),
        ref,
        conv,
        seq,
        body,
        cid: v,
        emoji: v,
        on: v,
        replyTo: seq,
        mentions: v,
        convs: fc.oneof(fc.dictionary(fc.oneof(fc.constantFrom(...ids), fc.string()), seq, { maxKeys: 3 }), v),
        extra: v,
      },
      { requiredKeys: ['type'] },
    );
    const raw = fc.oneof(
      fc.string({ maxLength: 50 }),
      fc.constantFrom(
        '{',
        '[]',
        'null',
        '"ping"',
        '{"type":"ping"',
        '{"type":"send","conv":' + '['.repeat(5000),
        JSON.stringify({ type: 'ping', __proto__: { admin: true } }),
      ),
      fc.jsonValue({ maxDepth: 2 }).map((x) => JSON.stringify(x)),
    );
    const frame = fc.oneof(
      { weight: 4, arbitrary: valid.map((f) => JSON.stringify(f)) },
      { weight: 4, arbitrary: fuzzed.map((f) => JSON.stringify(f)) },
      { weight: 1, arbitrary: raw },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 32 }) },
    );

    let cases = 0;
    let frames = 0;
    let maxPing = 0;
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 3, maxLength: 40, size: 'medium' }), async (batch) => {
        cases++;
        const ownBefore = JSON.stringify(await attacker.client.conversations.history.query({ conversationId: own, limit: 100 }));
        const s: RawClient = await openRaw(replica.port, attacker.accessToken);
        await s.wait((f) => f.type === 'ready');
        // A healthy client pings the same hub throughout the run.
        let pinging = true;
        const pinger = (async () => {
          while (pinging) {
            maxPing = Math.max(maxPing, await pingMs(healthy, PING_BOUND_MS * 3));
            await new Promise((r) => setTimeout(r, 20));
          }
        })();
        for (const f of batch) {
          frames++;
          if (typeof f === 'string') s.ws.send(f);
          else s.ws.send(f, { binary: true });
        }
        // A ping last: once it is answered, every frame before it has been handled (or the socket closed).
        const done = await Promise.race([s.request({ type: 'ping' }, 10_000).then(() => 'answered'), s.closed.then(() => 'closed')]);
        // Replies to async work (store reads and writes) may trail the pong: let them land.
        if (done === 'answered') {
          await replica.hub.writer.idle();
          await s.request({ type: 'resume', convs: {} }, 10_000).catch(() => undefined);
        }
        pinging = false;
        await pinger;
        for (const f of s.frames) {
          const key = f.type === 'error' ? `error:${f.code}` : f.type;
          seen.set(key, (seen.get(key) ?? 0) + 1);
          assert.notEqual(f.code, 'INTERNAL', `INTERNAL for a fuzzed frame: ${JSON.stringify(f)}`);
        }
        s.close();
        await s.closed;
        // Refused frames store nothing: with no ack and no ok, the attacker's own conversation is as it was.
        if (done === 'answered' && !s.frames.some((f) => f.type === 'ack' || f.type === 'ok')) {
          assert.equal(
            JSON.stringify(await attacker.client.conversations.history.query({ conversationId: own, limit: 100 })),
            ownBefore,
            'refused frames changed nothing',
          );
        }
        assert.equal((await fetch(`http://127.0.0.1:${replica.port}/health`)).status, 200);
        assert.equal(await metricValue(replica.metricsPort, 'hubbub_ws_connections'), 1, 'gauge = the healthy socket only');
        assert.ok(maxPing < PING_BOUND_MS, `healthy ping ${maxPing.toFixed(1)} ms`);
      }),
      fuzzSettings('ws frames', 60),
    );
    assert.equal(await snapshot(), before, "the victim's conversation is unchanged");
    console.log(
      `[fuzz] ws frames: ${cases} cases, ${frames} frames, max healthy ping ${maxPing.toFixed(1)} ms, replies ${JSON.stringify(Object.fromEntries(seen))}`,
    );
    healthy.close();
  });
});
