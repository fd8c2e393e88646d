import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dbKinds, errorCode, newUser, startTestReplica, testEnv, trpcClient, type TestEnv } from '../helpers/server.ts';
import type { Replica } from '../../server/src/replica.ts';

for (const kind of dbKinds) {
  describe(`auth on ${kind}`, () => {
    let env: TestEnv;
    let replica: Replica;
    before(async () => {
      env = await testEnv(kind);
      replica = await startTestReplica(env.env, { LOGIN_MAX_PER_ACCOUNT: '5' });
    });
    after(async () => {
      await replica?.stop();
      await env?.cleanup();
    });

    test('register → login → auth.me, and a restart keeps the user', async () => {
      const u = await newUser(replica.port, 'alice');
      assert.equal(u.user.username, u.username);
      assert.equal(u.expiresIn, 900);
      const anon = trpcClient(replica.port);
      const byName = await anon.auth.login.mutate({ login: u.username, password: u.password });
      const byEmail = await anon.auth.login.mutate({ login: `${u.username}@EXAMPLE.com`, password: u.password });
      assert.equal(byName.user.id, u.id);
      assert.equal(byEmail.user.id, u.id);
      const me = await trpcClient(replica.port, byName.accessToken).auth.me.query();
      assert.equal(me.id, u.id);
      assert.equal(me.email, `${u.username}@example.com`);

      // Restart on the same storage: the user and the JWT secret (same env) survive.
      await replica.stop();
      replica = await startTestReplica(env.env, { LOGIN_MAX_PER_ACCOUNT: '5' });
      const again = await trpcClient(replica.port).auth.login.mutate({ login: u.username, password: u.password });
      assert.equal(again.user.id, u.id);
      assert.equal((await trpcClient(replica.port, again.accessToken).auth.me.query()).username, u.username);
    });

    test('duplicate email or username is CONFLICT; wrong password and unknown user get the same error', async () => {
      const u = await newUser(replica.port, 'dup');
      const anon = trpcClient(replica.port);
      assert.equal(
        await errorCode(
          anon.auth.register.mutate({
            email: `${u.username}@example.com`,
            username: 'other_' + u.username.slice(0, 20),
            password: 'password123',
          }),
        ),
        'CONFLICT',
      );
      assert.equal(
        await errorCode(
          anon.auth.register.mutate({
            email: 'x' + u.username + '@example.com',
            username: u.username.toUpperCase(),
            password: 'password123',
          }),
        ),
        'CONFLICT',
      );
      const wrong = await anon.auth.login.mutate({ login: u.username, password: 'not the password' }).catch((e) => e);
      const unknown = await anon.auth.login.mutate({ login: 'nobody_' + u.username, password: 'not the password' }).catch((e) => e);
      assert.equal(wrong.data.code, 'UNAUTHORIZED');
      assert.equal(unknown.data.code, 'UNAUTHORIZED');
      assert.equal(wrong.message, unknown.message);
    });

    test('login is throttled per account', async () => {
      const u = await newUser(replica.port, 'throttle');
      const anon = trpcClient(replica.port);
      for (let i = 0; i < 5; i++)
        assert.equal(await errorCode(anon.auth.login.mutate({ login: u.username, password: 'wrong password' })), 'UNAUTHORIZED');
      // Even the right password is refused while the account is throttled.
      assert.equal(await errorCode(anon.auth.login.mutate({ login: u.username, password: u.password })), 'TOO_MANY_REQUESTS');
    });

    test('logout ends one session; logoutAll ends every session; changePassword ends the others', async () => {
      const u = await newUser(replica.port, 'sessions');
      const anon = trpcClient(replica.port);
      const second = await anon.auth.login.mutate({ login: u.username, password: u.password });
      await anon.auth.logout.mutate({ refreshToken: second.refreshToken });
      assert.equal(await errorCode(trpcClient(replica.port, second.accessToken).auth.me.query()), 'UNAUTHORIZED');
      assert.equal(await errorCode(anon.auth.refresh.mutate({ refreshToken: second.refreshToken })), 'UNAUTHORIZED');
      assert.equal((await u.client.auth.me.query()).id, u.id, 'the first session is untouched');

      const third = await anon.auth.login.mutate({ login: u.username, password: u.password });
      await u.client.auth.changePassword.mutate({ current: u.password, next: 'a brand new password' });
      assert.equal(await errorCode(trpcClient(replica.port, third.accessToken).auth.me.query()), 'UNAUTHORIZED');
      assert.equal((await u.client.auth.me.query()).id, u.id, 'the caller keeps its session');
      assert.equal(await errorCode(anon.auth.login.mutate({ login: u.username, password: u.password })), 'UNAUTHORIZED');
      const fourth = await anon.auth.login.mutate({ login: u.username, password: 'a brand new password' });

      await u.client.auth.logoutAll.mutate();
      assert.equal(await errorCode(u.client.auth.me.query()), 'UNAUTHORIZED');
      assert.equal(await errorCode(trpcClient(replica.port, fourth.accessToken).auth.me.query()), 'UNAUTHORIZED');
    });
  });
}

// Two replicas on one database: PostgreSQL only (an embedded database belongs to one process).
{
  const kind = 'postgres';
  describe(`refresh rotation on ${kind}`, () => {
    let env: TestEnv;
    let strict: Replica;
    let lenient: Replica;
    before(async () => {
      env = await testEnv(kind);
      // Two replicas on one database: one with no grace window, one with a long one.
      strict = await startTestReplica(env.env, { REFRESH_REUSE_GRACE_MS: '0' });
      lenient = await startTestReplica(env.env, { REFRESH_REUSE_GRACE_MS: '30000' });
    });
    after(async () => {
      await strict?.stop();
      await lenient?.stop();
      await env?.cleanup();
    });

    test('a spent refresh token used again fails and revokes the whole family', async () => {
      const u = await newUser(strict.port, 'rot');
      const anon = trpcClient(strict.port);
      const r1 = await anon.auth.refresh.mutate({ refreshToken: u.refreshToken });
      assert.notEqual(r1.refreshToken, u.refreshToken);
      const r2 = await anon.auth.refresh.mutate({ refreshToken: r1.refreshToken });
      assert.equal((await trpcClient(strict.port, r2.accessToken).auth.me.query()).id, u.id);
      // Replay of the first token: reuse detected.
      assert.equal(await errorCode(anon.auth.refresh.mutate({ refreshToken: u.refreshToken })), 'UNAUTHORIZED');
      // The family's newest tokens are dead too, access and refresh.
      assert.equal(await errorCode(anon.auth.refresh.mutate({ refreshToken: r2.refreshToken })), 'UNAUTHORIZED');
      assert.equal(await errorCode(trpcClient(strict.port, r2.accessToken).auth.me.query()), 'UNAUTHORIZED');
      // Another login (another family) is unaffected.
      const other = await anon.auth.login.mutate({ login: u.username, password: u.password });
      assert.equal((await trpcClient(strict.port, other.accessToken).auth.me.query()).id, u.id);
    });

    test('two concurrent refreshes within the grace window both succeed', async () => {
      const u = await newUser(lenient.port, 'tabs');
      const anon = trpcClient(lenient.port);
      const [a, b] = await Promise.all([
        anon.auth.refresh.mutate({ refreshToken: u.refreshToken }),
        anon.auth.refresh.mutate({ refreshToken: u.refreshToken }),
      ]);
      assert.notEqual(a.refreshToken, b.refreshToken);
      for (const pair of [a, b]) {
        assert.equal((await trpcClient(lenient.port, pair.accessToken).auth.me.query()).id, u.id);
        const next = await anon.auth.refresh.mutate({ refreshToken: pair.refreshToken });
        assert.equal(next.user.id, u.id);
      }
    });
  });
}
