import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { dbKinds, errorCode, newUser, trpcClient, replicaPerSuite } from '../helpers/server.ts';

for (const kind of dbKinds) {
  describe(`profiles and account on ${kind}`, () => {
    const replica = replicaPerSuite(kind);

    test('update validates and persists; get by id or username; search by prefix, LIKE wildcards literal', async () => {
      const a = await newUser(replica.port, 'zed');
      const updated = await a.client.profiles.update.mutate({
        displayName: '  Zed Zebra  ',
        bio: 'hello <b>world</b>',
        avatarUrl: 'https://cdn.example.com/z.png',
        statusText: 'busy',
        timezone: 'Europe/Paris',
      });
      assert.equal(updated.displayName, 'Zed Zebra');
      assert.equal(updated.timezone, 'Europe/Paris');
      assert.deepEqual(await a.client.profiles.get.query({ username: a.username.toUpperCase() }), updated);
      assert.deepEqual(await a.client.profiles.get.query({ userId: a.id }), updated);
      const hits = await a.client.profiles.search.query({ query: 'zed zeb' });
      assert.ok(hits.some((p) => p.id === a.id));
      const byName = await a.client.profiles.search.query({ query: a.username.slice(0, 8) });
      assert.ok(byName.some((p) => p.id === a.id));
      assert.equal((await a.client.profiles.search.query({ query: '%' })).length, 0, '% is literal');
      assert.equal((await a.client.profiles.search.query({ query: '_' })).length, 0, '_ is literal');
      // Clearing the avatar with null.
      assert.equal((await a.client.profiles.update.mutate({ avatarUrl: null })).avatarUrl, null);
    });

    test('blocking hides the blocker from search and refuses a direct conversation', async () => {
      const a = await newUser(replica.port, 'blocker');
      const b = await newUser(replica.port, 'blocked');
      await a.client.profiles.block.mutate({ userId: b.id });
      await a.client.profiles.block.mutate({ userId: b.id }); // idempotent
      assert.deepEqual(
        (await a.client.profiles.blocked.query()).map((p) => p.id),
        [b.id],
      );
      assert.equal((await b.client.profiles.search.query({ query: a.username })).length, 0);
      assert.equal(await errorCode(b.client.conversations.createDirect.mutate({ userId: a.id })), 'FORBIDDEN');
      assert.equal(await errorCode(a.client.conversations.createDirect.mutate({ userId: b.id })), 'FORBIDDEN');
      await a.client.profiles.unblock.mutate({ userId: b.id });
      assert.deepEqual(await a.client.profiles.blocked.query(), []);
      const dm = await b.client.conversations.createDirect.mutate({ userId: a.id });
      assert.equal(dm.kind, 'direct');
    });

    test('account.export returns the caller’s data; account.delete erases it and ends every session', async () => {
      const a = await newUser(replica.port, 'leaver');
      const b = await newUser(replica.port, 'stayer');
      await a.client.profiles.update.mutate({ bio: 'my secret bio' });
      const dm = await a.client.conversations.createDirect.mutate({ userId: b.id });
      const exported = await a.client.account.export.query();
      assert.equal(exported.profile.id, a.id);
      assert.equal(exported.profile.bio, 'my secret bio');
      assert.ok(exported.sessions.length >= 1);
      assert.ok(exported.authEvents.some((e) => e.event === 'register'));
      assert.deepEqual(
        exported.conversations.map((c) => c.id),
        [dm.id],
      );
      assert.ok(!JSON.stringify(exported).includes(a.refreshToken), 'no tokens in the export');

      assert.equal(await errorCode(a.client.account.delete.mutate({ password: 'wrong password' })), 'UNAUTHORIZED');
      await a.client.account.delete.mutate({ password: a.password });
      assert.equal(await errorCode(a.client.auth.me.query()), 'UNAUTHORIZED');
      assert.equal(
        await errorCode(trpcClient(replica.port).auth.login.mutate({ login: a.username, password: a.password })),
        'UNAUTHORIZED',
      );
      assert.equal(await errorCode(b.client.profiles.get.query({ userId: a.id })), 'NOT_FOUND');
      // The name is free again.
      const again = await trpcClient(replica.port).auth.register.mutate({
        email: `${a.username}@example.com`,
        username: a.username,
        password: 'another password',
      });
      assert.notEqual(again.user.id, a.id);
      // b's conversation no longer lists a as a member.
      const list = await b.client.conversations.list.query();
      assert.deepEqual(
        list.find((c) => c.id === dm.id)!.members.map((m) => m.userId),
        [b.id],
      );
    });
  });
}
