import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AccessTokens, fastVerify } from './tokens.ts';

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

test('the synchronous fast path accepts only what jose accepts, with the same claims, and takes our own tokens', async () => {
  const fc = (await import('fast-check')).default;
  const { SignJWT, jwtVerify } = await import('jose');
  const secret = 's'.repeat(40);
  const key = new TextEncoder().encode(secret);
  const other = new TextEncoder().encode('o'.repeat(40));
  const nowMs = Date.UTC(2026, 11, 2, 12, 0, 0);
  const now = Math.floor(nowMs / 1000);
  const joseOpts = { algorithms: ['HS256'], issuer: 'hubbub', audience: 'hubbub', typ: 'at+jwt', currentDate: new Date(nowMs) };
  // Each field is mostly valid, so that a token with exactly one thing wrong is common.
  const mostly = <T>(valid: T, ...wrong: unknown[]) =>
    fc.oneof({ weight: 6, arbitrary: fc.constant(valid) }, { weight: 1, arbitrary: fc.constantFrom(undefined, ...wrong) });
  const time = (valid: number) => mostly(valid, now, now - 1, now + 1, now - 100_000, now + 100_000, '1', null, now + 0.5, [now + 10]);
  const header = fc.record({
    typ: mostly('at+jwt', 'JWT', 'AT+JWT', 'application/at+jwt'),
    kid: fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom('k1', '') }),
    b64: fc.oneof({ weight: 8, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constant(true) }),
  });
  const payload = fc.record({
    iss: mostly('hubbub', 'evil', '', 'Hubbub', 1),
    aud: mostly('hubbub', 'other', ['hubbub'], ['a', 'hubbub'], ['other'], []),
    exp: time(now + 60),
    nbf: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: time(now - 60) }),
    iat: fc.oneof({ weight: 1, arbitrary: fc.constant(undefined) }, { weight: 3, arbitrary: time(now - 1) }),
    sub: mostly(claims.sub, 'x'),
    sid: mostly(claims.sid),
    extra: fc.option(fc.jsonValue(), { nil: undefined }),
  });
  const mutation = fc.oneof(
    { weight: 6, arbitrary: fc.constant('none') },
    { weight: 1, arbitrary: fc.constantFrom('other-key', 'flip-payload', 'sig-suffix', 'sig-trim', 'extra-segment', 'spaces') },
  );
  await fc.assert(
    fc.asyncProperty(header, payload, mutation, async (h, p, m) => {
      const hdr = Object.fromEntries(Object.entries({ alg: 'HS256', ...h }).filter(([, v]) => v !== undefined));
      const body = Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined));
      let token: string;
      try {
        token = await new SignJWT(body as never).setProtectedHeader(hdr as never).sign(m === 'other-key' ? other : key);
      } catch {
        return; // jose will not even sign it (e.g. a crit it does not know)
      }
      const [a, b, c] = token.split('.');
      if (m === 'flip-payload') token = `${a}.${b!.slice(0, -1)}${b!.endsWith('A') ? 'B' : 'A'}.${c}`;
      if (m === 'sig-suffix') token = `${token}A`;
      if (m === 'sig-trim') token = token.slice(0, -1);
      if (m === 'extra-segment') token = `${token}.x`;
      if (m === 'spaces') token = ` ${token}`;
      const fast = fastVerify(token, Buffer.from(secret), { issuer: 'hubbub', audience: 'hubbub' }, nowMs);
      let jose: Record<string, unknown> | null = null;
      try {
        jose = (await jwtVerify(token, key, joseOpts)).payload as Record<string, unknown>;
      } catch {
        jose = null;
      }
      if (fast !== null) assert.deepEqual(fast, jose, `fast path accepted what jose refused: ${token}`);
      // Our own tokens' shape (exact header, claims all valid) must take the fast path.
      const ours = h.typ === 'at+jwt' && h.kid === undefined && h.b64 === undefined;
      if (ours && m === 'none' && jose !== null && typeof jose.exp === 'number')
        assert.notEqual(fast, null, `fast path refused a valid token of ours: ${token}`);
    }),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 3000), seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined },
  );
  const tokens = new AccessTokens(secret, { ...opts, now: () => nowMs });
  assert.notEqual(fastVerify(await tokens.sign(claims), Buffer.from(secret), opts, nowMs), null);
});
