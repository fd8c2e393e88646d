import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { eq } from 'drizzle-orm';
import webPush from 'web-push';
import { notificationDeliveries } from '../../db/schema/index.ts';
import { testConfig } from '../../server/src/config.ts';
import { startReplica } from '../../server/src/replica.ts';
import { connect } from '../helpers/ws.ts';
import { newUser, testEnv } from '../helpers/server.ts';
import { PushService, selfSigned } from '../helpers/notify-services.ts';
import { notifyHarness } from '../helpers/notify-harness.ts';
import { spawnWorkers } from '../helpers/notify-workers.ts';

describe('notifications end to end', () => {
  const tls = selfSigned();
  const vapid = webPush.generateVAPIDKeys();
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });

  test('without REDIS_URL the hub runs the processors in-process: `npm start` alone notifies', async () => {
    const push = await new PushService(tls, vapid.publicKey).start();
    cleanups.push(() => push.close());
    const te = await testEnv('pglite');
    cleanups.push(() => te.cleanup());
    const replica = await startReplica(
      testConfig({
        ...te.env,
        VAPID_PUBLIC_KEY: vapid.publicKey,
        VAPID_PRIVATE_KEY: vapid.privateKey,
        WEBHOOK_ALLOW_PRIVATE: 'true',
        NOTIFY_PUSH_DELAY_MS: '0',
      }),
      { notify: { ca: tls.cert } },
    );
    cleanups.push(() => replica.stop());
    const a = await newUser(replica.port, 'ip');
    const b = await newUser(replica.port, 'ip');
    const dm = await a.client.conversations.createDirect.mutate({ userId: b.id });
    const browser = push.browser();
    await b.client.notifications.registerPush.mutate(browser.subscription);
    const { c } = await connect(replica.port, a.accessToken);
    assert.equal((await c.request({ type: 'send', conv: dm.id, cid: 'x1', body: 'in-process hello' })).type, 'ack');
    await push.waitFor(browser, 1);
    assert.equal(push.to(browser)[0]!.payload.body, 'in-process hello');
    assert.equal(push.to(browser)[0]!.payload.count, 1);
    c.close();
  });

  test('a worker SIGKILLed mid-send leaves exactly one notification: the job runs again, re-sends the claimed delivery with the same Topic, not a second one', async () => {
    const h = await notifyHarness({ NOTIFY_LOCK_MS: '1500' });
    cleanups.push(() => h.close());
    await h.stopWorkers(); // the workers here are a child process, `npm run workers`
    const workers = await spawnWorkers(h.env, h.tls.cert);
    cleanups.push(() => workers.stop());
    const a = await newUser(h.port, 'kill');
    const b = await newUser(h.port, 'kill');
    const dm = await a.client.conversations.createDirect.mutate({ userId: b.id });
    const browser = h.push.browser();
    await b.client.notifications.registerPush.mutate(browser.subscription);
    const { c } = await connect(h.port, a.accessToken);
    assert.equal((await c.request({ type: 'send', conv: dm.id, cid: 'k1', body: 'survive the kill' })).type, 'ack');
    // The first request reaches the push service, which holds it while the worker is killed.
    const held = new Promise<() => void>((r) => h.push.holdNext(r));
    await h.queued();
    await h.scheduler.queues.push.promoteJobs();
    const release = await held;
    await workers.kill();
    release();
    // A new worker takes the stalled job once the dead one's lock expires.
    h.startWorkers();
    await h.push.waitFor(browser, 2, 20_000);
    await h.settle();
    const reqs = h.push.to(browser);
    assert.equal(reqs.length, 2, 'sent again after the kill');
    assert.equal(reqs[0]!.topic, reqs[1]!.topic, 'with the same Topic');
    assert.deepEqual(reqs[0]!.payload, reqs[1]!.payload);
    const shown = [...h.push.notifications.entries()].filter(([t]) => t === reqs[0]!.topic);
    assert.equal(shown.length, 1, 'one notification for the user');
    const rows = await h.database.db.select().from(notificationDeliveries).where(eq(notificationDeliveries.userId, b.id));
    assert.deepEqual(
      rows.filter((r) => r.channel === 'push').map((r) => r.status),
      ['sent'],
    );
    c.close();
  });
});
