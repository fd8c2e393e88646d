import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AccessTokens } from './tokens.ts';

const claims = { sub: '0b6f1c8e-52a4-4d55-9d0e-2f7f2a3c1a10', sid: '5a1d1c1e-8c7b-4a51-b3a4-6a9f3e2d1c00' };
const opts = { issuer: 'hubbub', audience: 'hubbub', ttlSeconds: 60 };

test('a verified token stays valid until its exp, and is refused after it even though it was verified before', async () => {
  let now = Date.now();
  const tokens = new AccessTokens('s'.repeat(40), { ...opts, now: () => now });
  const t = await tokens.sign(claims);
  assert.deepEqual(await tokens.verify(t), claims);
  now += 59_000;
  assert.deepEqual(await tokens.verify(t), claims);
  now += 2_000;
  await assert.rejects(tokens.verify(t), /token expired/);
  await assert.rejects(tokens.verify(t), /token expired/);
});

test('a token whose signature differs from a verified one is not taken from the cache', async () => {
  const tokens = new AccessTokens('s'.repeat(40), opts);
  const t = await tokens.sign(claims);
  await tokens.verify(t);
  const [h, p, sig] = t.split('.');
  const flipped = `${h}.${p}.${sig!.slice(0, -2)}${sig!.endsWith('AA') ? 'AB' : 'AA'}`;
  await assert.rejects(tokens.verify(flipped), /invalid token/);
  const foreign = await new AccessTokens('f'.repeat(40), opts).sign(claims);
  await assert.rejects(tokens.verify(foreign), /invalid token/);
});

test('the cache is bounded: the oldest entries go first and are verified afresh', async () => {
  let now = Date.now();
  const tokens = new AccessTokens('s'.repeat(40), { ...opts, cacheMax: 2, now: () => now });
  const a = await tokens.sign(claims);
  const b = await tokens.sign({ ...claims, sid: '5a1d1c1e-8c7b-4a51-b3a4-6a9f3e2d1c01' });
  const c = await tokens.sign({ ...claims, sid: '5a1d1c1e-8c7b-4a51-b3a4-6a9f3e2d1c02' });
  for (const t of [a, b, c]) await tokens.verify(t);
  assert.equal(tokens.cachedCount, 2);
  // a was evicted: verified again by jose (and cached again, evicting b).
  assert.deepEqual(await tokens.verify(a), claims);
  assert.equal(tokens.cachedCount, 2);
  now += 61_000;
  for (const t of [a, b, c]) await assert.rejects(tokens.verify(t), /token expired/);
});

test('a token signed with our key whose sub or sid is not a uuid is invalid (refused before any query)', async () => {
  const tokens = new AccessTokens('s'.repeat(40), opts);
  await assert.rejects(tokens.verify(await tokens.sign({ ...claims, sub: 'not-a-uuid' })), /invalid token/);
  await assert.rejects(tokens.verify(await tokens.sign({ ...claims, sid: "x' or '1'='1" })), /invalid token/);
});
