import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenBucket } from './token-bucket.ts';

test('4 a bucket raised in place has the larger burst at once; lowered, it keeps no more than the new burst', () => {
  const b = new TokenBucket(1, 5, 0);
  for (let i = 0; i < 5; i++) assert.equal(b.take(0), true);
  assert.equal(b.take(0), false);
  b.reset(1, 40, 0);
  let n = 0;
  while (b.take(0)) n++;
  assert.equal(n, 35, 'the 35 extra tokens of the bigger burst, no reconnect');
  assert.equal(b.capacity, 40);
  b.reset(1, 5, 10_000); // 10 s later: 10 tokens refilled, capped at the new burst
  n = 0;
  while (b.take(10_000)) n++;
  assert.equal(n, 5);
});
