/**
 * The RateLimiter contract (the login throttle, per account and per IP): one set of test bodies
 * that every backend passes (rate-limiter.test.ts runs it in memory with a fake clock and on Redis
 * with Redis's clock). Spec id 6: login is throttled per account and per IP.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe } from 'node:test';
import type { RateLimiter } from '../../server/src/limits/rate-limiter.ts';
import { fixtureTest } from './fixture-test.ts';

export interface RateLimiterFixture {
  limiter: RateLimiter;
  /** Another replica's limiter on the same backend; absent where the backend is one process. */
  replica?: () => RateLimiter;
  /** Lets `ms` pass for the limiter (a fake clock, or real waiting). */
  pass(ms: number): Promise<void>;
  cleanup(): Promise<void>;
}

const WINDOW = 400;

export function registerRateLimiterContractTests(name: string, make: () => Promise<RateLimiterFixture>) {
  describe(`RateLimiter contract on ${name}`, () => {
    const run = fixtureTest(make);

    run('6 a key is allowed `limit` hits in a window, then refused with when to retry', async ({ limiter }) => {
      const k = `login:${randomUUID()}`;
      for (let i = 0; i < 3; i++) assert.equal((await limiter.hit(k, 3, WINDOW)).allowed, true, `hit ${i + 1}`);
      const refused = await limiter.hit(k, 3, WINDOW);
      assert.equal(refused.allowed, false);
      assert.ok(refused.retryAfterMs > 0 && refused.retryAfterMs <= WINDOW, `retry after ${refused.retryAfterMs} ms`);
      assert.equal((await limiter.hit(k, 3, WINDOW)).allowed, false, 'still refused');
    });

    run('6 keys are counted apart: one account throttled leaves another, and an IP, alone', async ({ limiter }) => {
      const [a, b, ip] = [`acct:${randomUUID()}`, `acct:${randomUUID()}`, `ip:${randomUUID()}`];
      await limiter.hit(a, 1, WINDOW);
      assert.equal((await limiter.hit(a, 1, WINDOW)).allowed, false);
      assert.equal((await limiter.hit(b, 1, WINDOW)).allowed, true);
      assert.equal((await limiter.hit(ip, 1, WINDOW)).allowed, true);
    });

    run('6 reset forgets a key at once (a successful login clears its failures)', async ({ limiter }) => {
      const k = `acct:${randomUUID()}`;
      await limiter.hit(k, 1, WINDOW);
      assert.equal((await limiter.hit(k, 1, WINDOW)).allowed, false);
      await limiter.reset(k);
      assert.equal((await limiter.hit(k, 1, WINDOW)).allowed, true);
      await limiter.reset(`acct:${randomUUID()}`); // an unknown key is no error
    });

    run('6 once the window has passed, a refused key is allowed again', async (f) => {
      const k = `ip:${randomUUID()}`;
      await f.limiter.hit(k, 1, WINDOW);
      const { allowed, retryAfterMs } = await f.limiter.hit(k, 1, WINDOW);
      assert.equal(allowed, false);
      await f.pass(retryAfterMs + 50);
      assert.equal((await f.limiter.hit(k, 1, WINDOW)).allowed, true);
    });

    run('6 concurrent hits are counted exactly: of 40 at once with limit 10, 10 pass', async ({ limiter }) => {
      const k = `ip:${randomUUID()}`;
      const out = await Promise.all(Array.from({ length: 40 }, () => limiter.hit(k, 10, 10_000)));
      assert.equal(out.filter((r) => r.allowed).length, 10);
    });

    run('6 replicas share the counts: hits on two replicas add up', async (f) => {
      if (!f.replica) return assert.equal((await f.limiter.hit(randomUUID(), 1, WINDOW)).allowed, true, 'one process: a fresh key');
      const other = f.replica();
      const k = `acct:${randomUUID()}`;
      await f.limiter.hit(k, 2, WINDOW);
      await other.hit(k, 2, WINDOW);
      assert.equal((await f.limiter.hit(k, 2, WINDOW)).allowed, false);
      await other.reset(k);
      assert.equal((await f.limiter.hit(k, 2, WINDOW)).allowed, true, "the other replica's reset counts here");
    });
  });
}
