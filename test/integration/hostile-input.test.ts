import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { dbKinds, newUser, sharedSecret, replicaPerSuite } from '../helpers/server.ts';

type Case = { name: string; method?: 'GET' | 'POST'; path: string; body?: string; query?: string; auth?: string | null };

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const key = new TextEncoder().encode(sharedSecret);
const sign = (claims: Record<string, unknown>, header: Record<string, unknown> = { alg: 'HS256', typ: 'at+jwt' }, exp = '15m') =>
  new SignJWT(claims)
    .setProtectedHeader(header as { alg: string })
    .setIssuer('hubbub')
    .setAudience('hubbub')
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(key);

for (const kind of dbKinds) {
  describe(`hostile input on ${kind}`, () => {
    const replica = replicaPerSuite(kind, { MAX_BODY_BYTES: String(256 * 1024) });

    test('50+ malformed or hostile inputs each get a 4xx tRPC error and change nothing stored', async () => {
      const victim = await newUser(replica.port, 'victim');
      const other = await newUser(replica.port, 'other');
      const token = victim.accessToken;
      const base = `http://127.0.0.1:${replica.port}`;
      const snapshot = async () => ({
        me: await victim.client.auth.me.query(),
        other: await victim.client.profiles.get.query({ userId: other.id }),
        convs: await victim.client.conversations.list.query(),
        search: (await victim.client.profiles.search.query({ query: 'victim' })).map((p) => p.id),
      });
      const before = await snapshot();

      const noneToken = `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64({ sub: victim.id, sid: '00000000-0000-0000-0000-000000000000', iss: 'hubbub', aud: 'hubbub', exp: 9999999999 })}.`;
      const sid = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).sid as string;
      const wrongAud = await new SignJWT({ sid })
        .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
        .setSubject(victim.id)
        .setIssuer('hubbub')
        .setAudience('elsewhere')
        .setExpirationTime('15m')
        .sign(key);
      const expired = await new SignJWT({ sid })
        .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
        .setSubject(victim.id)
        .setIssuer('hubbub')
        .setAudience('hubbub')
        .setIssuedAt(Math.floor(Date.now() / 1000) - 3600)
        .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
        .sign(key);
      const plainJwt = await sign({ sid, sub: victim.id }, { alg: 'HS256', typ: 'JWT' });
      const hs512 = await sign({ sid, sub: victim.id }, { alg: 'HS512', typ: 'at+jwt' });
      const foreignKey = await new SignJWT({ sid })
        .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
        .setSubject(victim.id)
        .setIssuer('hubbub')
        .setAudience('hubbub')
        .setExpirationTime('15m')
        .sign(new TextEncoder().encode('x'.repeat(40)));
      const forgedSession = await sign({ sid: '11111111-1111-4111-8111-111111111111', sub: victim.id });
      // Well signed, but ids PostgreSQL would reject as uuids: refused before any query.
      const badSid = await sign({ sid: "x' or '1'='1", sub: victim.id });
      const badSub = await sign({ sid, sub: 'not-a-uuid' });

      const j = (o: unknown) => JSON.stringify(o);
      const big = 'a'.repeat(100_000);
      const cases: Case[] = [
        { name: 'register: email is a number', path: 'auth.register', body: j({ email: 5, username: 'abcdef', password: 'password123' }) },
        {
          name: 'register: username is an array',
          path: 'auth.register',
          body: j({ email: 'a@b.co', username: ['x'], password: 'password123' }),
        },
        { name: 'register: password null', path: 'auth.register', body: j({ email: 'a@b.co', username: 'abcdef', password: null }) },
        { name: 'register: 100k username', path: 'auth.register', body: j({ email: 'a@b.co', username: big, password: 'password123' }) },
        {
          name: 'register: unknown field isAdmin',
          path: 'auth.register',
          body: j({ email: 'n1@b.co', username: 'newuser1', password: 'password123', isAdmin: true }),
        },
        {
          name: 'register: SQL in username',
          path: 'auth.register',
          body: j({ email: 'n2@b.co', username: "x'; drop table users;--", password: 'password123' }),
        },
        {
          name: 'register: script in username',
          path: 'auth.register',
          body: j({ email: 'n3@b.co', username: '<script>alert(1)</script>', password: 'password123' }),
        },
        {
          name: 'register: script in email',
          path: 'auth.register',
          body: j({ email: '<script>@x', username: 'newuser3', password: 'password123' }),
        },
        {
          name: 'register: takes the victim email',
          path: 'auth.register',
          body: j({ email: `${victim.username}@example.com`, username: 'newuser4', password: 'password123' }),
        },
        {
          name: 'register: takes the victim username',
          path: 'auth.register',
          body: j({ email: 'n5@b.co', username: victim.username, password: 'password123' }),
        },
        {
          name: 'register: NUL in display name',
          path: 'auth.register',
          body: j({ email: 'n6@b.co', username: 'newuser6', password: 'password123', displayName: 'a\u0000b' }),
        },
        { name: 'login: login is an object', path: 'auth.login', body: j({ login: { $ne: null }, password: 'x' }) },
        { name: 'login: SQL tautology', path: 'auth.login', body: j({ login: "' or 1=1 --", password: "' or 1=1 --" }) },
        { name: 'login: NUL byte', path: 'auth.login', body: j({ login: 'vic\u0000tim', password: 'x' }) },
        { name: 'login: missing password', path: 'auth.login', body: j({ login: victim.username }) },
        { name: 'login: victim with wrong password', path: 'auth.login', body: j({ login: victim.username, password: 'wrong-password' }) },
        { name: 'refresh: SQL as token', path: 'auth.refresh', body: j({ refreshToken: "rt_' or '1'='1" }) },
        { name: 'refresh: number as token', path: 'auth.refresh', body: j({ refreshToken: 12345678901 }) },
        { name: 'refresh: unknown field', path: 'auth.refresh', body: j({ refreshToken: victim.refreshToken, sessionId: sid }) },
        { name: 'me: no token', method: 'GET', path: 'auth.me', auth: null },
        { name: 'me: garbage bearer', method: 'GET', path: 'auth.me', auth: 'Bearer garbage' },
        { name: 'me: alg none token', method: 'GET', path: 'auth.me', auth: `Bearer ${noneToken}` },
        { name: 'me: wrong audience', method: 'GET', path: 'auth.me', auth: `Bearer ${wrongAud}` },
        { name: 'me: expired token', method: 'GET', path: 'auth.me', auth: `Bearer ${expired}` },
        { name: 'me: typ JWT instead of at+jwt', method: 'GET', path: 'auth.me', auth: `Bearer ${plainJwt}` },
        { name: 'me: HS512 instead of pinned HS256', method: 'GET', path: 'auth.me', auth: `Bearer ${hs512}` },
        { name: 'me: signed with another key', method: 'GET', path: 'auth.me', auth: `Bearer ${foreignKey}` },
        { name: 'me: forged session id', method: 'GET', path: 'auth.me', auth: `Bearer ${forgedSession}` },
        { name: 'me: signed token, sid not a uuid', method: 'GET', path: 'auth.me', auth: `Bearer ${badSid}` },
        { name: 'me: signed token, sub not a uuid', method: 'GET', path: 'auth.me', auth: `Bearer ${badSub}` },
        { name: 'me: Basic auth', method: 'GET', path: 'auth.me', auth: 'Basic dXNlcjpwYXNz' },
        { name: 'update: javascript: avatar', path: 'profiles.update', body: j({ avatarUrl: 'javascript:alert(1)' }) },
        { name: 'update: http avatar', path: 'profiles.update', body: j({ avatarUrl: 'http://example.com/a.png' }) },
        { name: 'update: unknown time zone', path: 'profiles.update', body: j({ timezone: 'Mars/Olympus_Mons' }) },
        { name: 'update: 10k bio', path: 'profiles.update', body: j({ bio: 'b'.repeat(10_000) }) },
        { name: 'update: blank display name', path: 'profiles.update', body: j({ displayName: '   ' }) },
        { name: 'update: control char in status', path: 'profiles.update', body: j({ statusText: 'hi\u0007' }) },
        { name: 'update: role field', path: 'profiles.update', body: j({ role: 'admin' }) },
        { name: 'update: lone surrogate in bio', path: 'profiles.update', body: '{"bio":"\\ud800"}' },
        { name: 'get: userId not a uuid', method: 'GET', path: 'profiles.get', query: j({ userId: 'not-a-uuid' }) },
        { name: 'get: SQL as username', method: 'GET', path: 'profiles.get', query: j({ username: "'; select pg_sleep(5);--" }) },
        { name: 'get: both keys', method: 'GET', path: 'profiles.get', query: j({ userId: victim.id, username: victim.username }) },
        { name: 'get: unknown user', method: 'GET', path: 'profiles.get', query: j({ userId: '22222222-2222-4222-8222-222222222222' }) },
        { name: 'search: empty query', method: 'GET', path: 'profiles.search', query: j({ query: '' }) },
        { name: 'search: limit 10000', method: 'GET', path: 'profiles.search', query: j({ query: 'a', limit: 10_000 }) },
        { name: 'search: limit -1', method: 'GET', path: 'profiles.search', query: j({ query: 'a', limit: -1 }) },
        { name: 'block: self', path: 'profiles.block', body: j({ userId: victim.id }) },
        { name: 'block: unknown user', path: 'profiles.block', body: j({ userId: '33333333-3333-4333-8333-333333333333' }) },
        { name: 'createDirect: self', path: 'conversations.createDirect', body: j({ userId: victim.id }) },
        {
          name: 'createDirect: unknown user',
          path: 'conversations.createDirect',
          body: j({ userId: '44444444-4444-4444-8444-444444444444' }),
        },
        {
          name: 'history: unknown conversation',
          method: 'GET',
          path: 'conversations.history',
          query: j({ conversationId: '55555555-5555-4555-8555-555555555555' }),
        },
        {
          name: 'history: limit 1000',
          method: 'GET',
          path: 'conversations.history',
          query: j({ conversationId: '55555555-5555-4555-8555-555555555555', limit: 1000 }),
        },
        { name: 'createGroup: 1000-char title', path: 'conversations.createGroup', body: j({ title: 't'.repeat(1000), memberIds: [] }) },
        { name: 'createGroup: bad member id', path: 'conversations.createGroup', body: j({ title: 'x', memberIds: ['x'] }) },
        { name: 'account.delete: wrong password', path: 'account.delete', body: j({ password: 'not it' }) },
        { name: 'account.delete: no password', path: 'account.delete', body: j({}) },
        { name: 'changePassword: wrong current', path: 'auth.changePassword', body: j({ current: 'nope', next: 'long enough password' }) },
        { name: 'changePassword: short next', path: 'auth.changePassword', body: j({ current: victim.password, next: 'short' }) },
        { name: 'malformed JSON body', path: 'auth.login', body: '{"login": "a", "password": ' },
        { name: 'input is an array', path: 'auth.login', body: j([victim.username, 'x']) },
        { name: 'deeply nested JSON', path: 'auth.login', body: '['.repeat(5000) + ']'.repeat(5000) },
        {
          name: 'body over the size limit',
          path: 'auth.register',
          body: j({ email: 'a@b.co', username: 'abc', password: 'x'.repeat(300 * 1024) }),
        },
        { name: 'unknown procedure', path: 'auth.sudo', body: j({}) },
        { name: 'GET on a mutation', method: 'GET', path: 'auth.logoutAll' },
        { name: 'POST on a query', path: 'auth.me', body: j({}) },
      ];
      assert.ok(cases.length >= 50, `only ${cases.length} cases`);

      for (const c of cases) {
        const method = c.method ?? 'POST';
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (c.auth !== null) headers.authorization = c.auth ?? `Bearer ${token}`;
        const url = `${base}/trpc/${c.path}${c.query ? '?input=' + encodeURIComponent(c.query) : ''}`;
        const res = await fetch(url, { method, headers, body: method === 'POST' ? c.body : undefined });
        const text = await res.text();
        assert.ok(res.status >= 400 && res.status < 500, `${c.name}: HTTP ${res.status} ${text.slice(0, 300)}`);
        const parsed = JSON.parse(text);
        assert.ok(parsed.error, `${c.name}: no tRPC error in ${text.slice(0, 200)}`);
        assert.notEqual(parsed.error.data?.code, 'INTERNAL_SERVER_ERROR', c.name);
      }

      // Nothing stored changed, and the server still serves the victim normally.
      const afterSnap = await snapshot();
      assert.deepEqual(afterSnap, before);
      const relog = await fetch(`${base}/trpc/auth.login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: j({ login: victim.username, password: victim.password }),
      });
      assert.equal(relog.status, 200);
      const health = await fetch(`${base}/health`);
      assert.equal(health.status, 200);
    });
  });
}
