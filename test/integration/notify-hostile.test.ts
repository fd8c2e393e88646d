import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dbKinds, errorCode, newUser, startTestReplica, testEnv, type TestEnv } from '../helpers/server.ts';
import type { Replica } from '../../server/src/replica.ts';
import { Browser } from '../helpers/notify-services.ts';

for (const kind of dbKinds) {
  describe(`notifications.* hostile input on ${kind}`, () => {
    let env: TestEnv;
    let replica: Replica;
    before(async () => {
      env = await testEnv(kind);
      // The SSRF guard is on (WEBHOOK_ALLOW_PRIVATE unset); development VAPID keys go to DATA_DIR.
      replica = await startTestReplica(env.env);
    });
    after(async () => {
      await replica?.stop();
      await env?.cleanup();
    });

    test('every notifications procedure answers bad input with a 4xx, never INTERNAL, and nothing stored changes', async () => {
      const me = await newUser(replica.port, 'nh');
      const other = await newUser(replica.port, 'nh');
      const theirs = await other.client.conversations.createGroup.mutate({ title: 'not yours', memberIds: [] });
      const mine = await me.client.conversations.createGroup.mutate({ title: 'mine', memberIds: [] });
      const hook = await other.client.notifications.webhooks.create.mutate({ url: 'https://example.com/hook' }).catch(() => null);
      const n = me.client.notifications as any;
      const snapshot = async () => ({
        settings: await me.client.notifications.settings.query(),
        hooks: await me.client.notifications.webhooks.list.query(),
        deliveries: await me.client.notifications.deliveries.query({}),
        otherHooks: await other.client.notifications.webhooks.list.query(),
      });
      const before = await snapshot();
      const good = new Browser('https://push.example.com/x').subscription;
      const big = 'a'.repeat(100_000);
      const cases: [string, () => Promise<unknown>, string[]][] = [
        ['registerPush: http endpoint', () => n.registerPush.mutate({ ...good, endpoint: 'http://push.example.com/x' }), ['BAD_REQUEST']],
        ['registerPush: loopback endpoint', () => n.registerPush.mutate({ ...good, endpoint: 'https://127.0.0.1/x' }), ['BAD_REQUEST']],
        [
          'registerPush: link-local endpoint',
          () => n.registerPush.mutate({ ...good, endpoint: 'https://169.254.169.254/latest' }),
          ['BAD_REQUEST'],
        ],
        ['registerPush: not a URL', () => n.registerPush.mutate({ ...good, endpoint: 'push me' }), ['BAD_REQUEST']],
        ['registerPush: 100k endpoint', () => n.registerPush.mutate({ ...good, endpoint: 'https://e.com/' + big }), ['BAD_REQUEST']],
        [
          'registerPush: p256dh too short',
          () => n.registerPush.mutate({ ...good, keys: { ...good.keys, p256dh: 'AAAA' } }),
          ['BAD_REQUEST'],
        ],
        [
          'registerPush: p256dh not base64url',
          () => n.registerPush.mutate({ ...good, keys: { ...good.keys, p256dh: '!!!!' } }),
          ['BAD_REQUEST'],
        ],
        [
          'registerPush: auth 15 bytes',
          () => n.registerPush.mutate({ ...good, keys: { ...good.keys, auth: Buffer.alloc(15).toString('base64url') } }),
          ['BAD_REQUEST'],
        ],
        ['registerPush: keys missing', () => n.registerPush.mutate({ endpoint: good.endpoint }), ['BAD_REQUEST']],
        ['registerPush: unknown field', () => n.registerPush.mutate({ ...good, expirationTime: 5 }), ['BAD_REQUEST']],
        ['registerPush: endpoint a number', () => n.registerPush.mutate({ ...good, endpoint: 5 }), ['BAD_REQUEST']],
        ['unregisterPush: object endpoint', () => n.unregisterPush.mutate({ endpoint: { $ne: 1 } }), ['BAD_REQUEST']],
        ['updateSettings: push a string', () => n.updateSettings.mutate({ push: 'yes' }), ['BAD_REQUEST']],
        ['updateSettings: unknown field', () => n.updateSettings.mutate({ sms: true }), ['BAD_REQUEST']],
        [
          'updateSettings: quiet 24:00',
          () => n.updateSettings.mutate({ quietHours: { start: '24:00', end: '07:00', timezone: 'UTC' } }),
          ['BAD_REQUEST'],
        ],
        [
          'updateSettings: quiet 7:00',
          () => n.updateSettings.mutate({ quietHours: { start: '22:00', end: '7:00', timezone: 'UTC' } }),
          ['BAD_REQUEST'],
        ],
        [
          'updateSettings: quiet bad zone',
          () => n.updateSettings.mutate({ quietHours: { start: '22:00', end: '07:00', timezone: 'Mars/Olympus' } }),
          ['BAD_REQUEST'],
        ],
        [
          'updateSettings: quiet zone injection',
          () => n.updateSettings.mutate({ quietHours: { start: '22:00', end: '07:00', timezone: "UTC'; drop table users;--" } }),
          ['BAD_REQUEST'],
        ],
        [
          'updateSettings: quiet missing end',
          () => n.updateSettings.mutate({ quietHours: { start: '22:00', timezone: 'UTC' } }),
          ['BAD_REQUEST'],
        ],
        ['updateSettings: level bogus', () => n.updateSettings.mutate({ conversations: { [mine.id]: 'loud' } }), ['BAD_REQUEST']],
        [
          'updateSettings: conversation id not a uuid',
          () => n.updateSettings.mutate({ conversations: { 'not-a-uuid': 'none' } }),
          ['BAD_REQUEST'],
        ],
        [
          "updateSettings: someone else's conversation (with a good one)",
          () => n.updateSettings.mutate({ push: false, conversations: { [mine.id]: 'none', [theirs.id]: 'none' } }),
          ['NOT_FOUND'],
        ],
        ['updateSettings: array', () => n.updateSettings.mutate([]), ['BAD_REQUEST']],
        ['webhooks.create: http', () => n.webhooks.create.mutate({ url: 'http://example.com/h' }), ['BAD_REQUEST']],
        ['webhooks.create: loopback', () => n.webhooks.create.mutate({ url: 'https://127.0.0.1/h' }), ['BAD_REQUEST']],
        ['webhooks.create: localhost name', () => n.webhooks.create.mutate({ url: 'https://localhost:8443/h' }), ['BAD_REQUEST']],
        ['webhooks.create: private 10/8', () => n.webhooks.create.mutate({ url: 'https://10.1.2.3/h' }), ['BAD_REQUEST']],
        ['webhooks.create: private 192.168', () => n.webhooks.create.mutate({ url: 'https://192.168.0.10/h' }), ['BAD_REQUEST']],
        ['webhooks.create: IPv6 loopback', () => n.webhooks.create.mutate({ url: 'https://[::1]/h' }), ['BAD_REQUEST']],
        ['webhooks.create: IPv4-mapped loopback', () => n.webhooks.create.mutate({ url: 'https://[::ffff:127.0.0.1]/h' }), ['BAD_REQUEST']],
        ['webhooks.create: metadata service', () => n.webhooks.create.mutate({ url: 'https://169.254.169.254/h' }), ['BAD_REQUEST']],
        ['webhooks.create: decimal IP', () => n.webhooks.create.mutate({ url: 'https://2130706433/h' }), ['BAD_REQUEST']],
        ['webhooks.create: credentials', () => n.webhooks.create.mutate({ url: 'https://user:pw@example.com/h' }), ['BAD_REQUEST']],
        ['webhooks.create: javascript:', () => n.webhooks.create.mutate({ url: 'javascript:alert(1)' }), ['BAD_REQUEST']],
        ['webhooks.create: 100k', () => n.webhooks.create.mutate({ url: 'https://example.com/' + big }), ['BAD_REQUEST']],
        ['webhooks.create: missing url', () => n.webhooks.create.mutate({}), ['BAD_REQUEST']],
        ['webhooks.delete: not a uuid', () => n.webhooks.delete.mutate({ id: '1 or 1=1' }), ['BAD_REQUEST']],
        [
          "webhooks.delete: someone else's",
          () => n.webhooks.delete.mutate({ id: hook?.id ?? '00000000-0000-4000-8000-000000000000' }),
          ['NOT_FOUND'],
        ],
        [
          "webhooks.rotateSecret: someone else's",
          () => n.webhooks.rotateSecret.mutate({ id: hook?.id ?? '00000000-0000-4000-8000-000000000000' }),
          ['NOT_FOUND'],
        ],
        [
          'webhooks.rotateSecret: unknown',
          () => n.webhooks.rotateSecret.mutate({ id: '00000000-0000-4000-8000-000000000000' }),
          ['NOT_FOUND'],
        ],
        ['deliveries: limit 0', () => n.deliveries.query({ limit: 0 }), ['BAD_REQUEST']],
        ['deliveries: limit 10^9', () => n.deliveries.query({ limit: 1e9 }), ['BAD_REQUEST']],
        ['deliveries: limit a string', () => n.deliveries.query({ limit: '5' }), ['BAD_REQUEST']],
        ['settings: no token', () => (other.setToken('garbage'), other.client.notifications.settings.query()), ['UNAUTHORIZED']],
      ];
      for (const [name, call, codes] of cases) {
        const code = await errorCode(call());
        assert.ok(codes.includes(code), `${name}: got ${code}, expected ${codes.join('|')}`);
      }
      other.setToken(other.accessToken);
      assert.deepEqual(await snapshot(), before, 'nothing stored changed');
      assert.ok(cases.length >= 40);
    });

    test('valid settings round-trip; the VAPID public key is served; the push subscription registers and unregisters', async () => {
      const me = await newUser(replica.port, 'nh');
      const conv = await me.client.conversations.createGroup.mutate({ title: 'x', memberIds: [] });
      const { publicKey } = await me.client.notifications.vapidPublicKey.query();
      assert.equal(Buffer.from(publicKey!, 'base64url').length, 65);
      const s = await me.client.notifications.updateSettings.mutate({
        previews: false,
        quietHours: { start: '22:30', end: '06:45', timezone: 'America/New_York' },
        conversations: { [conv.id]: 'mentions' },
      });
      assert.deepEqual(s, {
        push: true,
        email: true,
        // No SMTP_URL on this replica: the page shows the digest as unavailable.
        emailAvailable: false,
        previews: false,
        quietHours: { start: '22:30', end: '06:45', timezone: 'America/New_York' },
        conversations: { [conv.id]: 'mentions' },
      });
      const back = await me.client.notifications.updateSettings.mutate({ quietHours: null, conversations: { [conv.id]: 'all' } });
      assert.equal(back.quietHours, null);
      assert.deepEqual(back.conversations, {});
      const b = new Browser('https://push.example.com/sub/1');
      await me.client.notifications.registerPush.mutate(b.subscription);
      await me.client.notifications.registerPush.mutate(b.subscription); // idempotent
      assert.deepEqual(await me.client.notifications.unregisterPush.mutate({ endpoint: b.endpoint }), { removed: true });
      assert.deepEqual(await me.client.notifications.unregisterPush.mutate({ endpoint: b.endpoint }), { removed: false });
    });

    test('account.export includes notification data (no webhook secrets); account.delete erases it', async () => {
      const me = await newUser(replica.port, 'nh');
      const b = new Browser('https://push.example.com/sub/export');
      await me.client.notifications.registerPush.mutate(b.subscription);
      const hook = await me.client.notifications.webhooks.create.mutate({ url: 'https://example.com/export-hook' });
      await me.client.notifications.updateSettings.mutate({ previews: false });
      const data = (await me.client.account.export.query()) as any;
      assert.deepEqual(
        data.notifications.pushSubscriptions.map((s: any) => s.endpoint),
        [b.endpoint],
      );
      assert.deepEqual(
        data.notifications.webhooks.map((w: any) => w.id),
        [hook.id],
      );
      assert.equal(data.notifications.settings.previews, false);
      assert.ok(!JSON.stringify(data).includes(hook.secret), 'the secret is not exported');
      await me.client.account.delete.mutate({ password: me.password });
      const db = replica.database.db;
      const { pushSubscriptions, webhooks, notificationSettings } = await import('../../db/schema/index.ts');
      const { eq } = await import('drizzle-orm');
      assert.equal((await db.select().from(pushSubscriptions).where(eq(pushSubscriptions.userId, me.id))).length, 0);
      assert.equal((await db.select().from(webhooks).where(eq(webhooks.userId, me.id))).length, 0);
      assert.equal((await db.select().from(notificationSettings).where(eq(notificationSettings.userId, me.id))).length, 0);
    });
  });
}
