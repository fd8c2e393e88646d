/**
 * The notification isolation ports (endpoint breaker, user share), each contract run on its
 * memory adapter (clock injected) and its Redis adapter (real Redis, Redis's clock, a prefix per
 * run). Section 8, isolation: an endpoint that keeps failing is paused; no user holds more than
 * a share of the send workers.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import type { BreakerOptions, EndpointBreaker } from '../../server/src/notify/endpoint-breaker.ts';
import { MemoryEndpointBreaker } from '../../server/src/notify/endpoint-breaker.memory.ts';
import { RedisEndpointBreaker } from '../../server/src/notify/endpoint-breaker.redis.ts';
import type { UserShare } from '../../server/src/notify/user-share.ts';
import { MemoryUserShare } from '../../server/src/notify/user-share.memory.ts';
import { RedisUserShare } from '../../server/src/notify/user-share.redis.ts';
import { services } from '../helpers/env.ts';

/** A backend under test, and how its time passes: a fake clock for memory, real waiting for Redis. */
interface Backend {
  breaker(o: BreakerOptions): EndpointBreaker;
  share(): UserShare;
  pass(ms: number): Promise<void>;
  now(): Promise<number>;
}

const opts: BreakerOptions = { failures: 3, cooldownMs: 300, maxCooldownMs: 1000, probeMs: 200 };

function registerIsolationContract(name: string, make: () => Backend) {
  describe(`notification isolation ports on ${name}`, () => {
    test('8 isolation: the breaker stays closed below the failure count; a success resets the count', async () => {
      const b = make().breaker(opts);
      const t = randomUUID();
      assert.deepEqual(await b.failure(t), {});
      assert.deepEqual(await b.failure(t), {});
      await b.success(t);
      assert.deepEqual(await b.failure(t), {});
      assert.deepEqual(await b.failure(t), {});
      assert.deepEqual(await b.admit(t), { ok: true });
      assert.equal((await b.pausedUntil([t])).size, 0);
    });

    test('8 isolation: repeated failures pause the endpoint (others unaffected); after the pause one probe goes; its failure pauses twice as long', async () => {
      const be = make();
      const b = be.breaker(opts);
      const [t, other] = [randomUUID(), randomUUID()];
      await b.failure(t);
      await b.failure(t);
      const start = await be.now();
      const { until } = await b.failure(t);
      assert.ok(until && until - start >= opts.cooldownMs - 20 && until - start <= opts.cooldownMs + 50, `paused for ${until! - start} ms`);
      const refused = await b.admit(t);
      assert.equal(refused.ok, false);
      assert.equal((refused as { until: number }).until, until);
      assert.deepEqual(await b.admit(other), { ok: true });
      assert.deepEqual([...(await b.pausedUntil([t, other])).entries()], [[t, until]]);
      await be.pass(until - (await be.now()) + 10);
      assert.deepEqual(await b.admit(t), { ok: true }, 'one probe after the pause');
      assert.equal((await b.admit(t)).ok, false, 'a second waits for the probe');
      const probeFailed = await b.failure(t);
      const at = await be.now();
      assert.ok(probeFailed.until && probeFailed.until - at >= 2 * opts.cooldownMs - 20, 'twice as long after a failed probe');
      await be.pass(probeFailed.until! - (await be.now()) + 10);
      assert.deepEqual(await b.admit(t), { ok: true });
      await b.success(t);
      assert.deepEqual(await b.admit(t), { ok: true });
      assert.deepEqual(await b.admit(t), { ok: true }, 'closed: no probe limit');
      assert.equal((await b.pausedUntil([t])).size, 0);
    });

    test('8 isolation: a user share gives at most `cap` slots per key, again to the same holder, and frees them on release or when a lease runs out', async () => {
      const be = make();
      const s = be.share();
      const key = `webhook:${randomUUID()}`;
      assert.equal(await s.acquire(key, 'j1', 2, 10_000), true);
      assert.equal(await s.acquire(key, 'j2', 2, 200), true);
      assert.equal(await s.acquire(key, 'j3', 2, 10_000), false, 'over the cap');
      assert.equal(await s.acquire(key, 'j1', 2, 10_000), true, 'the same holder again');
      assert.equal(await s.acquire(`webhook:${randomUUID()}`, 'j3', 2, 10_000), true, 'another user is not affected');
      await s.release(key, 'j1');
      assert.equal(await s.acquire(key, 'j3', 2, 10_000), true, 'a released slot');
      assert.equal(await s.acquire(key, 'j4', 2, 10_000), false);
      await be.pass(250);
      assert.equal(await s.acquire(key, 'j4', 2, 10_000), true, "j2's lease ran out (its worker died)");
    });
  });
}

registerIsolationContract('memory', () => {
  let now = 1_000_000;
  const clock = () => now;
  return {
    breaker: (o) => new MemoryEndpointBreaker(o, clock),
    share: () => new MemoryUserShare(clock),
    pass: async (ms) => void (now += ms),
    now: async () => now,
  };
});

const clients: Redis[] = [];
after(() => {
  for (const c of clients) c.disconnect();
});
registerIsolationContract('Redis', () => {
  const redis = new Redis(services.redisUrl());
  clients.push(redis);
  const prefix = `t${randomBytes(4).toString('hex')}:`;
  return {
    breaker: (o) => new RedisEndpointBreaker(redis, o, prefix),
    share: () => new RedisUserShare(redis, prefix),
    pass: (ms) => sleep(ms),
    now: async () => {
      const [s, us] = await redis.time();
      return Number(s) * 1000 + Math.floor(Number(us) / 1000);
    },
  };
});
