import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DomainError } from '../errors.ts';
import { KeyedBuckets } from './keyed-buckets.ts';

test('a cost is taken whole or not at all, refills at the rate, per key, and full buckets are forgotten', () => {
  let now = 0;
  const b = new KeyedBuckets(10, 100, () => now);
  assert.equal(b.take('u1', 60), true);
  assert.equal(b.take('u1', 60), false, 'not enough left: nothing taken');
  assert.equal(b.take('u1', 40), true);
  assert.equal(b.take('u2', 100), true, 'another key has its own budget');
  assert.equal(b.retryAfterMs('u1', 20), 2000);
  now = 2000;
  assert.equal(b.take('u1', 20), true);
  assert.throws(
    () => b.spend('u1', 1, 'slow down'),
    (e: unknown) => e instanceof DomainError && e.code === 'RATE_LIMITED' && e.retryAfterMs === 100,
  );
  now = 60_000;
  b.take('u3');
  assert.equal(b.size, 1, 'refilled buckets are swept');
});
