import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import webPush from 'web-push';
import { openDatabase, type Database } from '../../server/src/db/database.ts';
import { services } from '../helpers/env.ts';
import { PushService, selfSigned, SmtpSink, WebhookReceiver } from '../helpers/notify-services.ts';
import { spawnWorkers } from '../helpers/notify-workers.ts';
import { assertLedgerConsistent, deliver, paymentSucceeded, stripeEnv } from '../helpers/payments.ts';
import { spawnReplica, type ProcessReplica } from '../helpers/process-replica.ts';
import { newUser, testEnv, trpcClient, type TestEnv } from '../helpers/server.ts';
import { connect, type Frame, type RawClient } from '../helpers/ws.ts';

type User = Awaited<ReturnType<typeof newUser>>;

/**
 * Hubbub in the shape it is deployed: two hub processes on one PostgreSQL and one Redis,
 * `npm run workers` as its own process, Stripe's API server (stripe-mock), an SMTP server, and
 * a Web Push service and a webhook receiver reached by host name over TLS (their CA given to the
 * workers as a deployment gives one, NODE_EXTRA_CA_CERTS). Every call a user makes goes to one
 * hub and what it changes is seen on the other.
 */
describe('production shape: two hub processes, the worker process, PostgreSQL, Redis, stripe-mock, SMTP, HTTPS receivers by name', () => {
  const tls = selfSigned();
  const vapid = webPush.generateVAPIDKeys();
  const push = new PushService(tls, vapid.publicKey);
  const smtp = new SmtpSink();
  const hooks = new WebhookReceiver(tls);
  let te: TestEnv;
  let hubs: ProcessReplica[] = [];
  let workers: Awaited<ReturnType<typeof spawnWorkers>>;
  let database: Database;
  const sockets: RawClient[] = [];

  before(async () => {
    await Promise.all([push.start(), smtp.start(), hooks.start()]);
    te = await testEnv('postgres', { redis: true });
    const env: Record<string, string> = {
      ...te.env,
      ...stripeEnv(services.stripeApiUrl()),
      VAPID_PUBLIC_KEY: vapid.publicKey,
      VAPID_PRIVATE_KEY: vapid.privateKey,
      VAPID_SUBJECT: 'mailto:ops@hubbub.test',
      SMTP_URL: `smtp://localhost:${smtp.port}`,
      SMTP_FROM: 'Hubbub <notify@hubbub.test>',
      PUBLIC_URL: 'https://chat.hubbub.test',
      // The receivers listen on loopback; the guard and its lookup stay on.
      WEBHOOK_ALLOW_PRIVATE: 'true',
      NOTIFY_PUSH_DELAY_MS: '300',
      NOTIFY_EMAIL_DELAY_S: '1',
      LOGIN_MAX_PER_IP: '100000',
    };
    // The first hub migrates; the second and the workers find the schema in place.
    hubs = [await spawnReplica(env)];
    hubs.push(await spawnReplica(env));
    workers = await spawnWorkers(env, tls.cert);
    database = await openDatabase({ databaseUrl: env.DATABASE_URL!, dataDir: 'unused' });
  });

  after(async () => {
    for (const s of sockets) s.close();
    await workers?.stop();
    await Promise.all(hubs.map((h) => h.kill('SIGTERM')));
    await database?.close();
    await Promise.all([push.close(), smtp.close(), hooks.close()]);
    await te?.cleanup();
  });

  const [a, b] = [0, 1];
  async function socket(hub: number, u: User) {
    const { c, ready } = await connect(hubs[hub]!.port, u.accessToken);
    sockets.push(c);
    return { c, ready };
  }
  /** A user registered on one hub, calling the API of the other. */
  async function user(name: string, apiHub: number) {
    const u = await newUser(hubs[1 - apiHub]!.port, name);
    return { ...u, api: trpcClient(hubs[apiHub]!.port, () => u.accessToken) };
  }

  test('a group made on one hub is used at once from the other; an offline member is told by push, webhook and email through the worker process, each reached by name', async () => {
    const alice = await user('alice', a);
    const bob = await user('bob', a);
    const carol = await user('carol', b);
    const browser = push.browser();
    await carol.api.notifications.registerPush.mutate(browser.subscription);
    const hook = await carol.api.notifications.webhooks.create.mutate({ url: hooks.url });
    hooks.secret = hook.secret;
    assert.match(hooks.url, /^https:\/\/localhost:\d+\//, 'the receiver is reached by name');
    assert.match(browser.endpoint, /^https:\/\/localhost:\d+\//);
    await carol.api.notifications.updateSettings.mutate({ email: true });

    const aliceOnB = await socket(b, alice);
    const bobOnA = await socket(a, bob);
    // Made through hub A; Alice's socket on hub B sends at once (read-your-writes across replicas).
    const group = await alice.api.conversations.createGroup.mutate({ title: 'Launch', memberIds: [bob.id, carol.id] });
    const bodies = ['first', 'second', 'third'];
    for (const [i, body] of bodies.entries()) {
      const ack = await aliceOnB.c.request({ type: 'send', conv: group.id, cid: `m${i}`, body });
      assert.equal(ack.type, 'ack', `send ${i} right after createGroup: ${JSON.stringify(ack)}`);
    }
    const isMessage = (f: Frame) => f.type === 'event' && f.conv === group.id && f.kind === 'message';
    await bobOnA.c.wait((f) => isMessage(f) && f.body === 'third');
    const got = bobOnA.c.frames.filter(isMessage);
    assert.deepEqual(
      got.map((e) => e.body),
      bodies,
      "hub A delivered hub B's sends once each, in order",
    );
    assert.deepEqual(
      got.map((e) => e.seq),
      [...got.map((e) => e.seq)].sort((x, y) => x - y),
    );

    // Carol has no socket anywhere: one push for the burst, one webhook call, one digest.
    await push.waitFor(browser, 1, 20_000);
    const p = push.to(browser)[0]!;
    assert.equal(p.status, 201);
    assert.equal(p.payload.conv, group.id);
    assert.equal(p.payload.body, 'third');
    assert.equal(p.payload.count, 3);
    const hit = await hooks.waitFor((h) => h.json.user === carol.id && h.json.conversation === group.id, 20_000);
    assert.ok(hit.verified, 'the webhook is signed with its secret');
    const mail = await smtp.waitFor((m) => (m.to as { text: string } | undefined)?.text.includes(carol.username) ?? false, 20_000);
    assert.match(mail.text ?? '', /third/);
    // The worker marks a delivery sent after the far end answered: read until it has (bounded).
    const sentChannels = async () =>
      [...new Set((await carol.api.notifications.deliveries.query({})).filter((d) => d.status === 'sent').map((d) => d.channel))].sort();
    const deadline = Date.now() + 10_000;
    let channels = await sentChannels();
    while (channels.length < 3 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      channels = await sentChannels();
    }
    assert.deepEqual(channels, ['email', 'push', 'webhook']);
  });

  test('money across the two hubs: a top-up made on one is credited by the webhook on the other; subscribes from both at once charge once; a tip reaches the other hub live; the ledger balances', async () => {
    const payer = await user('payer', a);
    const payee = await user('payee', b);
    const topUp = await payer.api.payments.createTopUp.mutate({ amount: 2000 });
    assert.match(topUp.paymentIntentId, /^pi_/);
    const res = await deliver(hubs[b]!.port, paymentSucceeded(topUp.paymentIntentId, 2000));
    assert.equal(res.status, 200);
    assert.equal((await payer.api.payments.balance.query()).balance, 2000);

    const apis = [trpcClient(hubs[a]!.port, payer.accessToken), trpcClient(hubs[b]!.port, payer.accessToken)];
    const key = () => randomBytes(8).toString('hex');
    const plans = await payer.api.payments.plans.query();
    const premium = plans.find((p) => p.id !== 'free');
    assert.ok(premium, 'a paid plan is configured');
    const results = await Promise.allSettled(
      [...apis, ...apis].map((c) => c.payments.subscribe.mutate({ planId: premium.id, idempotencyKey: key() })),
    );
    assert.ok(
      results.every((r) => r.status === 'fulfilled'),
      JSON.stringify(results.filter((r) => r.status === 'rejected')),
    );
    assert.equal(
      (await payer.api.payments.balance.query()).balance,
      2000 - premium.price,
      'four concurrent subscribes on two hubs, one charge',
    );

    const dm = await payer.api.conversations.createDirect.mutate({ userId: payee.id });
    const payeeOnB = await socket(b, payee);
    const tipSeen = payeeOnB.c.wait((f) => f.type === 'event' && f.conv === dm.id && f.kind === 'system' && f.subtype === 'tip');
    const tip = await payer.api.payments.tip.mutate({ conversationId: dm.id, toUserId: payee.id, amount: 150, idempotencyKey: key() });
    const event = await tipSeen;
    assert.equal(event.transferId, tip.transferId);
    assert.equal((await payee.api.payments.balance.query()).balance, 150);
    await assertLedgerConsistent(database);
  });
});
