import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { eq } from 'drizzle-orm';
import { notificationDeliveries, webhooks } from '../../db/schema/index.ts';
import { connect } from '../helpers/ws.ts';
import { errorCode, newUser } from '../helpers/server.ts';
import { notifyHarness, type NotifyHarness } from '../helpers/notify-harness.ts';
import { PushService, WebhookReceiver } from '../helpers/notify-services.ts';

/**
 * Every real push service and almost every webhook receiver is a host name: these reach ours by
 * name over TLS, through the workers' SSRF guard (on: only the loopback allowance is set, the
 * connect-time lookup is the production one over the test's resolver for `.localhost` names).
 */
describe('notifications to host names over TLS, through the SSRF guard', () => {
  let h: NotifyHarness;
  const closers: (() => Promise<void>)[] = [];
  before(async () => {
    h = await notifyHarness();
  });
  after(async () => {
    for (const c of closers) await c();
    await h?.close();
  });

  test('Web Push and webhooks to `localhost` and to names under `.localhost` are delivered', async () => {
    const namedPush = await new PushService(h.tls, h.vapid.publicKey, 'push.localhost').start();
    const namedHooks = await new WebhookReceiver(h.tls, { host: 'hooks.localhost' }).start();
    closers.push(
      () => namedPush.close(),
      () => namedHooks.close(),
    );
    const author = await newUser(h.port, 'hn');
    const reader = await newUser(h.port, 'hn');
    const dm = await author.client.conversations.createDirect.mutate({ userId: reader.id });
    const plain = h.push.browser();
    const named = namedPush.browser();
    assert.match(plain.endpoint, /^https:\/\/localhost:\d+\//);
    assert.match(named.endpoint, /^https:\/\/push\.localhost:\d+\//);
    await reader.client.notifications.registerPush.mutate(plain.subscription);
    await reader.client.notifications.registerPush.mutate(named.subscription);
    h.hooks.secret = (await reader.client.notifications.webhooks.create.mutate({ url: h.hooks.url })).secret;
    namedHooks.secret = (await reader.client.notifications.webhooks.create.mutate({ url: namedHooks.url })).secret;
    assert.match(h.hooks.url, /^https:\/\/localhost:\d+\//);
    assert.match(namedHooks.url, /^https:\/\/hooks\.localhost:\d+\//);
    const { c } = await connect(h.port, author.accessToken);
    assert.equal((await c.request({ type: 'send', conv: dm.id, cid: 'n1', body: 'by name' })).type, 'ack');
    await h.settle();
    const rows = (await h.database.db.select().from(notificationDeliveries).where(eq(notificationDeliveries.userId, reader.id))).filter(
      (r) => r.channel !== 'email',
    );
    const delivered = rows.filter((r) => r.status === 'sent').length;
    process.stderr.write(`[notify-hostnames] deliveries to named hosts: ${delivered} of 4\n`);
    assert.deepEqual(rows.map((r) => [r.channel, r.status, r.error]).sort(), [
      ['push', 'sent', null],
      ['push', 'sent', null],
      ['webhook', 'sent', null],
      ['webhook', 'sent', null],
    ]);
    assert.equal(h.push.to(plain).length, 1);
    assert.equal(h.push.to(plain)[0]!.payload.body, 'by name');
    assert.equal(namedPush.to(named).length, 1);
    assert.equal(namedPush.to(named)[0]!.payload.body, 'by name');
    for (const r of [h.hooks, namedHooks]) {
      const hits = r.hits.filter((x) => x.json.user === reader.id);
      assert.equal(hits.length, 1);
      assert.ok(hits[0]!.verified);
      assert.equal(hits[0]!.json.body, 'by name');
    }
    c.close();
  });
});

describe('with WEBHOOK_ALLOW_PRIVATE off, a name that resolves to a private address is refused when connecting', () => {
  let h: NotifyHarness;
  before(async () => {
    h = await notifyHarness({ WEBHOOK_ALLOW_PRIVATE: 'false' });
  });
  after(async () => h?.close());

  test('registration refuses the loopback name; a webhook whose name resolves to loopback later (DNS rebinding) is never called and fails at once', async () => {
    const rebound = await new WebhookReceiver(h.tls, { host: 'hooks.localhost' }).start();
    try {
      const author = await newUser(h.port, 'hr');
      const reader = await newUser(h.port, 'hr');
      const dm = await author.client.conversations.createDirect.mutate({ userId: reader.id });
      assert.equal(await errorCode(reader.client.notifications.webhooks.create.mutate({ url: rebound.url })), 'BAD_REQUEST');
      // Registered while the name resolved to a public address: the row as the API would have written it.
      rebound.secret = 'whsec_rebinding';
      await h.database.db.insert(webhooks).values({ id: randomUUID(), userId: reader.id, url: rebound.url, secret: rebound.secret });
      const { c } = await connect(h.port, author.accessToken);
      assert.equal((await c.request({ type: 'send', conv: dm.id, cid: 'r1', body: 'rebound' })).type, 'ack');
      await h.settle();
      c.close();
      assert.equal(rebound.hits.length, 0, 'the receiver was never reached');
      const rows = (await h.database.db.select().from(notificationDeliveries).where(eq(notificationDeliveries.userId, reader.id))).filter(
        (r) => r.channel === 'webhook',
      );
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.status, 'failed');
      assert.equal(rows[0]!.attempts, 1, 'a refused address is permanent, not retried');
      assert.match(rows[0]!.error ?? '', /private/);
    } finally {
      await rebound.close();
    }
  });
});
