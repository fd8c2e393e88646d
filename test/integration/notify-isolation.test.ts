import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Replica } from '../../server/src/replica.ts';
import { selfSigned, WebhookReceiver } from '../helpers/notify-services.ts';
import { spawnWorkers } from '../helpers/notify-workers.ts';
import { newUser, startTestReplica, testEnv, type TestEnv } from '../helpers/server.ts';
import { connect, type RawClient } from '../helpers/ws.ts';

type User = Awaited<ReturnType<typeof newUser>>;
const log = (s: string) => process.stderr.write(`[notify-isolation] ${s}\n`);

/**
 * One account's hanging endpoints must not cost anyone else: a hub on PostgreSQL and Redis,
 * `npm run workers` as its own process, HTTPS receivers by host name. Account X has 10 webhooks
 * at a receiver that reads each request and never answers, and is notified from 20
 * conversations; user Y has one webhook at a receiver that answers at once.
 */
describe('notification isolation: a hanging receiver costs its owner, not the other users', () => {
  const tls = selfSigned();
  const hanging = new WebhookReceiver(tls, { hang: true });
  const fast = new WebhookReceiver(tls);
  let te: TestEnv;
  let replica: Replica;
  let workers: Awaited<ReturnType<typeof spawnWorkers>>;
  before(async () => {
    await Promise.all([hanging.start(), fast.start()]);
    te = await testEnv('postgres', { redis: true });
    const env = {
      ...te.env,
      // Loopback receivers need the allowance; the guard and its lookup stay on.
      WEBHOOK_ALLOW_PRIVATE: 'true',
      NOTIFY_PUSH_DELAY_MS: '200',
      NOTIFY_SEND_TIMEOUT_MS: '2000',
      NOTIFY_BREAKER_FAILURES: '3',
      NOTIFY_BREAKER_COOLDOWN_MS: '120000',
      NOTIFY_ATTEMPTS: '5',
    };
    replica = await startTestReplica(env);
    workers = await spawnWorkers(env, tls.cert);
  });
  after(async () => {
    await workers?.stop();
    await replica?.stop();
    await Promise.all([hanging.close(), fast.close()]);
    await te?.cleanup();
  });

  /** From the ack of a message to Y's webhook hit for it. */
  async function latencyOfY(author: RawClient, conv: string, y: User, body: string) {
    const ack = await author.request({ type: 'send', conv, cid: body, body });
    assert.equal(ack.type, 'ack');
    const sentAt = performance.now();
    // Long enough to measure the failure mode, not only to fail on it.
    const hit = await fast.waitFor((h) => h.json.user === y.id && h.json.body === body, 180_000);
    assert.ok(hit.verified);
    return hit.at - sentAt;
  }

  test("8 isolation: Y is notified within seconds while X's 10 webhooks hang for 20 conversations; X's endpoints are paused and X sees it", async () => {
    const author = await newUser(replica.port, 'iso');
    const x = await newUser(replica.port, 'iso');
    const y = await newUser(replica.port, 'iso');
    for (let i = 1; i <= 10; i++) await x.client.notifications.webhooks.create.mutate({ url: `${hanging.url}/${i}` });
    fast.secret = (await y.client.notifications.webhooks.create.mutate({ url: fast.url })).secret;
    assert.match(hanging.url, /^https:\/\/localhost:\d+\//);
    assert.match(fast.url, /^https:\/\/localhost:\d+\//);
    const rooms: string[] = [];
    for (let i = 1; i <= 20; i++)
      rooms.push((await author.client.conversations.createGroup.mutate({ title: `X room ${i}`, memberIds: [x.id] })).id);
    const dm = (await author.client.conversations.createDirect.mutate({ userId: y.id })).id;
    const { c } = await connect(replica.port, author.accessToken);
    try {
      const quiet = await latencyOfY(c, dm, y, 'y-quiet');
      log(`Y's webhook latency with nothing else queued: ${quiet.toFixed(0)} ms`);
      for (const [i, room] of rooms.entries())
        assert.equal((await c.request({ type: 'send', conv: room, cid: `x${i}`, body: `to X ${i}` })).type, 'ack');
      // X's sends have reached the hanging receiver: they hold worker slots now.
      await hanging.waitFor((h) => h.json.user === x.id, 30_000);
      const loaded = await latencyOfY(c, dm, y, 'y-loaded');
      log(
        `Y's webhook latency while X's 10 webhooks hang for 20 conversations: ${loaded.toFixed(0)} ms (X's requests so far: ${hanging.hits.length})`,
      );
      assert.ok(loaded < 5000, `Y waited ${loaded.toFixed(0)} ms`);
      // The breaker opens on X's endpoints, and X can see it.
      const deadline = Date.now() + 60_000;
      let paused: { status: string; pausedUntil: string | null; target: string }[] = [];
      while (!paused.length) {
        assert.ok(Date.now() < deadline, 'no endpoint of X was paused within 60 s');
        await new Promise((r) => setTimeout(r, 250));
        paused = (await x.client.notifications.deliveries.query({ limit: 200 })).filter((d) => d.status === 'paused');
      }
      const deliveries = await x.client.notifications.deliveries.query({ limit: 200 });
      const hooks = await x.client.notifications.webhooks.list.query();
      const pausedHooks = hooks.filter((h) => h.pausedUntil);
      const byStatus: Record<string, number> = {};
      for (const d of deliveries) byStatus[d.status] = (byStatus[d.status] ?? 0) + 1;
      log(`X: ${pausedHooks.length} of 10 endpoints paused; X's webhook deliveries by status ${JSON.stringify(byStatus)}`);
      assert.ok(pausedHooks.length >= 1);
      for (const p of paused) {
        assert.ok(p.pausedUntil && Date.parse(p.pausedUntil) > Date.now(), 'paused until a moment ahead');
        assert.ok(
          pausedHooks.some((h) => h.id === p.target),
          'the paused delivery is to a paused webhook',
        );
      }
      assert.equal(deliveries.filter((d) => d.status === 'sent').length, 0, "nothing reached X's hanging receiver");
      // Y is still served while X's endpoints are paused.
      const later = await latencyOfY(c, dm, y, 'y-paused');
      log(`Y's webhook latency with X's endpoints paused: ${later.toFixed(0)} ms`);
      assert.ok(later < 5000, `Y waited ${later.toFixed(0)} ms`);
    } finally {
      c.close();
    }
  });
});
