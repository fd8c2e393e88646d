import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { dbKinds, errorCode, newUser, replicaPerSuite } from '../helpers/server.ts';
import { services } from '../helpers/env.ts';
import { assertLedgerConsistent, chargeRefunded, deliver, ledgerSnapshot, paymentSucceeded, sign, stripeEnv } from '../helpers/payments.ts';

const key = () => randomBytes(8).toString('hex');

for (const kind of dbKinds) {
  describe(`payments on ${kind}`, () => {
    const replica = replicaPerSuite(kind, {
      ...stripeEnv(services.stripeApiUrl()),
      TOPUP_MIN: '100',
      TOPUP_MAX: '50000',
      STRIPE_WEBHOOK_MAX_BYTES: '4096',
    });
    const grant = (username: string, amount: number) => replica.services.payments.grant({ username, amount, actor: 'test' });
    async function pair() {
      const [a, b] = await Promise.all([newUser(replica.port, 'pay'), newUser(replica.port, 'pay')]);
      const g = await a.client.conversations.createGroup.mutate({ title: 'tips', memberIds: [b.id] });
      return { a, b, conv: g.id };
    }
    /** A top-up made through the API (a real PaymentIntent from stripe-mock), then paid by webhook. */
    async function topUp(u: Awaited<ReturnType<typeof newUser>>, amount: number) {
      const t = await u.client.payments.createTopUp.mutate({ amount });
      const r = await deliver(replica.port, paymentSucceeded(t.paymentIntentId, amount));
      assert.equal(r.status, 200);
      return t.paymentIntentId;
    }

    test('7 a tip moves money once, appends one system event with a seq, and a retry returns the first result', async () => {
      const { a, b, conv } = await pair();
      await grant(a.username, 1000);
      const k = key();
      const first = await a.client.payments.tip.mutate({
        conversationId: conv,
        toUserId: b.id,
        amount: 250,
        idempotencyKey: k,
        note: 'thanks',
      });
      assert.equal(first.balance, 750);
      const again = await a.client.payments.tip.mutate({
        conversationId: conv,
        toUserId: b.id,
        amount: 250,
        idempotencyKey: k,
        note: 'thanks',
      });
      assert.deepEqual(again, first);
      assert.equal(
        await errorCode(a.client.payments.tip.mutate({ conversationId: conv, toUserId: b.id, amount: 251, idempotencyKey: k })),
        'CONFLICT',
      );
      assert.deepEqual(await a.client.payments.balance.query(), { currency: 'usd', balance: 750, debt: 0 });
      assert.deepEqual(await b.client.payments.balance.query(), { currency: 'usd', balance: 250, debt: 0 });
      const h = await b.client.conversations.history.query({ conversationId: conv });
      const tips = h.events.filter((e) => e.kind === 'system' && (e as any).subtype === 'tip');
      assert.equal(tips.length, 1);
      assert.equal(tips[0]!.seq, first.seq);
      assert.deepEqual(
        {
          subtype: (tips[0] as any).subtype,
          from: (tips[0] as any).from,
          to: (tips[0] as any).to,
          amount: (tips[0] as any).amount,
          currency: (tips[0] as any).currency,
          transferId: (tips[0] as any).transferId,
        },
        { subtype: 'tip', from: a.id, to: b.id, amount: 250, currency: 'usd', transferId: first.transferId },
      );
      const hist = await b.client.payments.history.query({ limit: 1 });
      assert.equal(hist.items[0]!.transferId, first.transferId);
      assert.equal(hist.items[0]!.amount, 250);
      assert.equal(hist.items[0]!.counterparty, a.id);
      assert.equal(hist.items[0]!.conversationId, conv);
      const ah = await a.client.payments.history.query({ limit: 1 });
      assert.equal(ah.items[0]!.amount, -250);
      assert.ok(ah.nextCursor);
      const older = await a.client.payments.history.query({ limit: 5, cursor: ah.nextCursor! });
      assert.deepEqual(
        older.items.map((i) => [i.kind, i.amount]),
        [['grant', 1000]],
      );
      assert.equal(older.nextCursor, null);
      await assertLedgerConsistent(replica.database);
    });

    test('7 a retry after the ledger committed but before the event was appended ends with exactly one event', async () => {
      const { a, b, conv } = await pair();
      await grant(a.username, 500);
      const k = key();
      // The crash window, reproduced: the transfer commits through the ledger alone, no event.
      const pay = replica.services.payments as any;
      const moved = await pay.d.ledger.tip({ from: a.id, to: b.id, amount: 100, key: k, conversationId: conv });
      assert.equal(moved.replayed, false);
      const before = (await a.client.conversations.history.query({ conversationId: conv })).events.length;
      const r = await a.client.payments.tip.mutate({ conversationId: conv, toUserId: b.id, amount: 100, idempotencyKey: k });
      const r2 = await a.client.payments.tip.mutate({ conversationId: conv, toUserId: b.id, amount: 100, idempotencyKey: k });
      assert.equal(r.transferId, moved.transfer.id);
      assert.equal(r2.seq, r.seq);
      const events = (await a.client.conversations.history.query({ conversationId: conv })).events;
      assert.equal(events.length, before + 1);
      assert.equal((await a.client.payments.balance.query()).balance, 400);
    });

    test('7 100 concurrent tips with repeated keys between 5 users: conservation, no negative wallet, one event per key', async () => {
      const users = await Promise.all([0, 1, 2, 3, 4].map(() => newUser(replica.port, 'conc')));
      const g = await users[0]!.client.conversations.createGroup.mutate({ title: 'c', memberIds: users.slice(1).map((u) => u.id) });
      for (const u of users) await grant(u.username, 300);
      // 60 distinct requests, 100 calls: 40 of them repeat a request with its key.
      const requests = Array.from({ length: 60 }, (_, i) => ({
        payer: users[i % 5]!,
        to: users[(i + 1 + (i % 3)) % 5]!,
        amount: 1 + ((i * 37) % 120),
        k: key(),
      }));
      const calls = Array.from({ length: 100 }, (_, i) => requests[i % 60]!);
      const results = await Promise.allSettled(
        calls.map((c) =>
          c.payer.client.payments.tip.mutate({ conversationId: g.id, toUserId: c.to.id, amount: c.amount, idempotencyKey: c.k }),
        ),
      );
      for (const r of results) if (r.status === 'rejected') assert.equal(await errorCode(Promise.reject(r.reason)), 'PRECONDITION_FAILED');
      const ok = results
        .filter((r) => r.status === 'fulfilled')
        .map((r) => (r as PromiseFulfilledResult<{ transferId: string; seq: number }>).value);
      const distinct = new Set(ok.map((r) => r.transferId));
      const events = (await users[0]!.client.conversations.history.query({ conversationId: g.id, limit: 100 })).events.filter(
        (e) => e.kind === 'system',
      );
      assert.equal(events.length, distinct.size, 'one system event per transfer');
      // The same key always answered with the same transfer and seq.
      const byTransfer = new Map<string, number>();
      for (const r of ok) {
        if (byTransfer.has(r.transferId)) assert.equal(byTransfer.get(r.transferId), r.seq);
        byTransfer.set(r.transferId, r.seq);
      }
      const balances = await Promise.all(users.map((u) => u.client.payments.balance.query()));
      assert.equal(
        balances.reduce((s, b) => s + b.balance, 0),
        1500,
        'no money created or lost between wallets',
      );
      await assertLedgerConsistent(replica.database);
    });

    test('7 payment_intent.succeeded delivered 5 times at once credits once; the event id is recorded', async () => {
      const u = await newUser(replica.port, 'topup');
      const t = await u.client.payments.createTopUp.mutate({ amount: 1500, idempotencyKey: key() });
      assert.match(t.paymentIntentId, /^pi_/);
      assert.ok(t.clientSecret);
      assert.equal(t.amount, 1500);
      assert.equal(t.currency, 'usd');
      const event = paymentSucceeded(t.paymentIntentId, 1500);
      const replies = await Promise.all([0, 1, 2, 3, 4].map(() => deliver(replica.port, event)));
      assert.deepEqual(
        replies.map((r) => r.status),
        [200, 200, 200, 200, 200],
      );
      // Another event id for the same PaymentIntent (Stripe may send one) changes nothing either.
      assert.equal((await deliver(replica.port, paymentSucceeded(t.paymentIntentId, 1500))).status, 200);
      assert.deepEqual(await u.client.payments.balance.query(), { currency: 'usd', balance: 1500, debt: 0 });
      const again = await deliver(replica.port, event);
      assert.equal(again.body?.duplicate, true);
      const metrics = await (
        await fetch(`http://127.0.0.1:${replica.metricsPort}/metrics?name=hubbub_payments_webhook_events_total`)
      ).text();
      assert.match(metrics, /hubbub_payments_webhook_events_total\{type="payment_intent.succeeded",outcome="applied"\} [1-9]/);
      assert.match(metrics, /outcome="duplicate"/);
      assert.doesNotMatch(metrics, /pi_|evt_/, 'no ids in labels');
      await assertLedgerConsistent(replica.database);
    });

    test('7 a refund that arrives before its payment succeeded ends at the right balance', async () => {
      const u = await newUser(replica.port, 'early');
      const t = await u.client.payments.createTopUp.mutate({ amount: 2000 });
      assert.equal((await deliver(replica.port, chargeRefunded(t.paymentIntentId, [{ id: 're_' + key(), amount: 500 }]))).status, 200);
      assert.deepEqual(await u.client.payments.balance.query(), { currency: 'usd', balance: 0, debt: 500 });
      assert.equal((await deliver(replica.port, paymentSucceeded(t.paymentIntentId, 2000))).status, 200);
      assert.deepEqual(await u.client.payments.balance.query(), { currency: 'usd', balance: 1500, debt: 0 });
      await assertLedgerConsistent(replica.database);
    });

    test('7 a refund larger than the balance leaves debt: tips and premium refused, the next top-up pays it first', async () => {
      const { a, b, conv } = await pair();
      const pi = await topUp(a, 1000);
      await a.client.payments.tip.mutate({ conversationId: conv, toUserId: b.id, amount: 700, idempotencyKey: key() });
      const re = 're_' + key();
      const refund = chargeRefunded(pi, [{ id: re, amount: 1000 }]);
      assert.equal((await deliver(replica.port, refund)).status, 200);
      // The same refund in another event (charge.refunded lists every refund so far): once.
      assert.equal((await deliver(replica.port, chargeRefunded(pi, [{ id: re, amount: 1000 }]))).status, 200);
      assert.deepEqual(await a.client.payments.balance.query(), { currency: 'usd', balance: 0, debt: 700 });
      const before = await ledgerSnapshot(replica.database);
      assert.equal(
        await errorCode(a.client.payments.tip.mutate({ conversationId: conv, toUserId: b.id, amount: 1, idempotencyKey: key() })),
        'PRECONDITION_FAILED',
      );
      assert.equal(
        await errorCode(a.client.payments.subscribe.mutate({ planId: 'premium', idempotencyKey: key() })),
        'PRECONDITION_FAILED',
      );
      assert.deepEqual(await ledgerSnapshot(replica.database), before);
      await topUp(a, 1000);
      assert.deepEqual(await a.client.payments.balance.query(), { currency: 'usd', balance: 300, debt: 0 });
      await a.client.payments.tip.mutate({ conversationId: conv, toUserId: b.id, amount: 300, idempotencyKey: key() });
      await assertLedgerConsistent(replica.database);
    });

    test('7 webhooks: forged, wrong secret, stale, unsigned, non-JSON, oversized: 400 or 413 and nothing changes; unknown types 2xx', async () => {
      const u = await newUser(replica.port, 'forge');
      const t = await u.client.payments.createTopUp.mutate({ amount: 999 });
      const body = JSON.stringify(paymentSucceeded(t.paymentIntentId, 999));
      const before = await ledgerSnapshot(replica.database);
      const forged = sign(body).replace(/v1=[0-9a-f]+/, 'v1=' + '0'.repeat(64));
      assert.equal((await deliver(replica.port, null, { raw: body, signature: forged })).status, 400);
      assert.equal((await deliver(replica.port, null, { raw: body, signature: sign(body, { secret: 'whsec_wrong' }) })).status, 400);
      assert.equal(
        (await deliver(replica.port, null, { raw: body, signature: sign(body, { timestamp: Math.floor(Date.now() / 1000) - 301 }) }))
          .status,
        400,
      );
      assert.equal((await deliver(replica.port, null, { raw: body, signature: null })).status, 400);
      // A body changed after signing.
      assert.equal((await deliver(replica.port, null, { raw: body.replace('999', '9999'), signature: sign(body) })).status, 400);
      const notJson = 'amount=999&currency=usd';
      assert.equal((await deliver(replica.port, null, { raw: notJson, signature: sign(notJson) })).status, 400);
      const notEvent = JSON.stringify({ hello: 'world' });
      assert.equal((await deliver(replica.port, null, { raw: notEvent, signature: sign(notEvent) })).status, 400);
      const big = JSON.stringify({ ...paymentSucceeded(t.paymentIntentId, 999), pad: 'x'.repeat(5000) });
      assert.equal((await deliver(replica.port, null, { raw: big, signature: sign(big) })).status, 413);
      assert.deepEqual(await ledgerSnapshot(replica.database), before);
      assert.deepEqual(await u.client.payments.balance.query(), { currency: 'usd', balance: 0, debt: 0 });
      const unknown = await deliver(replica.port, {
        id: 'evt_' + key(),
        object: 'event',
        type: 'customer.created',
        created: 1,
        data: { object: { id: 'cus_1', object: 'customer' } },
      });
      assert.equal(unknown.status, 200);
      assert.equal(unknown.body?.outcome, 'ignored');
      assert.deepEqual((await ledgerSnapshot(replica.database)).transfers, before.transfers);
    });

    test('7 hostile input: each a 4xx tRPC error, never INTERNAL, and the ledger unchanged', async () => {
      const { a, b, conv } = await pair();
      const outsider = await newUser(replica.port, 'out');
      const other = await outsider.client.conversations.createGroup.mutate({ title: 'theirs', memberIds: [] });
      await grant(a.username, 100);
      const before = await ledgerSnapshot(replica.database);
      const tip = (amount: unknown, extra: Record<string, unknown> = {}) =>
        errorCode(a.client.payments.tip.mutate({ conversationId: conv, toUserId: b.id, amount, idempotencyKey: key(), ...extra } as any));
      for (const amount of [0, -1, 1.5, 2 ** 53, '10', null, Number.NaN])
        assert.equal(await tip(amount), 'BAD_REQUEST', `amount ${String(amount)}`);
      assert.equal(await tip(101), 'PRECONDITION_FAILED');
      assert.equal(await tip(1, { toUserId: a.id }), 'BAD_REQUEST');
      assert.equal(await tip(1, { toUserId: outsider.id }), 'BAD_REQUEST');
      assert.equal(await tip(1, { toUserId: randomUUID() }), 'BAD_REQUEST');
      assert.equal(await tip(1, { conversationId: other.id, toUserId: outsider.id }), 'FORBIDDEN');
      assert.equal(await tip(1, { conversationId: randomUUID() }), 'NOT_FOUND');
      assert.equal(await tip(1, { idempotencyKey: '' }), 'BAD_REQUEST');
      assert.equal(await tip(1, { idempotencyKey: 'x'.repeat(129) }), 'BAD_REQUEST');
      assert.equal(await tip(1, { surprise: true }), 'BAD_REQUEST');
      for (const amount of [0, -1, 1.5, 2 ** 53, '10', 99, 50_001]) {
        assert.equal(await errorCode(a.client.payments.createTopUp.mutate({ amount } as any)), 'BAD_REQUEST', `top-up ${String(amount)}`);
      }
      assert.equal(await errorCode(a.client.payments.subscribe.mutate({ planId: 'platinum', idempotencyKey: key() })), 'NOT_FOUND');
      assert.equal(await errorCode(a.client.payments.subscribe.mutate({ planId: 'free', idempotencyKey: key() })), 'BAD_REQUEST');
      assert.equal(
        await errorCode(a.client.payments.subscribe.mutate({ planId: 'premium', idempotencyKey: key() })),
        'PRECONDITION_FAILED',
      );
      assert.equal(await errorCode(a.client.payments.history.query({ limit: 0 })), 'BAD_REQUEST');
      assert.equal(await errorCode(a.client.payments.history.query({ cursor: -5 })), 'BAD_REQUEST');
      assert.deepEqual(await ledgerSnapshot(replica.database), before);
    });

    test('7 plans, subscribe, cancel and renewal with an injected clock: charged per period, downgraded when short', async () => {
      const u = await newUser(replica.port, 'prem');
      const plans = await u.client.payments.plans.query();
      const premium = plans.find((p) => p.id === 'premium')!;
      const free = plans.find((p) => p.id === 'free')!;
      assert.ok(premium.limits.sendBurst > free.limits.sendBurst);
      assert.equal((await u.client.payments.entitlements.query()).plan, 'free');
      await grant(u.username, premium.price * 2 - 1);
      const k = key();
      const e = await u.client.payments.subscribe.mutate({ planId: 'premium', idempotencyKey: k });
      assert.equal(e.plan, 'premium');
      assert.equal(e.autoRenew, true);
      assert.deepEqual(e.limits, premium.limits);
      // A retry charges nothing.
      await u.client.payments.subscribe.mutate({ planId: 'premium', idempotencyKey: k });
      assert.equal((await u.client.payments.balance.query()).balance, premium.price - 1);
      const until = Date.parse(e.until!);
      const pay = replica.services.payments;
      // Before the period's end nothing happens.
      assert.deepEqual(await pay.runRenewals(until - 1000), { renewed: 0, downgraded: 0 });
      // At its end, the wallet is one short: downgraded, nothing charged.
      assert.deepEqual(await pay.runRenewals(until + 1000), { renewed: 0, downgraded: 1 });
      assert.equal((await u.client.payments.entitlements.query()).plan, 'free');
      assert.equal((await u.client.payments.balance.query()).balance, premium.price - 1);
      // Enough money: subscribe again, renew once (a second run for the same period charges nothing), cancel, expire.
      await grant(u.username, premium.price + 1);
      const e2 = await u.client.payments.subscribe.mutate({ planId: 'premium', idempotencyKey: key() });
      const end2 = Date.parse(e2.until!);
      assert.equal((await u.client.payments.balance.query()).balance, premium.price);
      // The service's own clock is the real one; renewal moves the period from its end.
      assert.deepEqual(await pay.runRenewals(end2 + 1), { renewed: 1, downgraded: 0 });
      assert.deepEqual(await pay.runRenewals(end2 + 1), { renewed: 0, downgraded: 0 });
      assert.equal((await u.client.payments.balance.query()).balance, 0);
      const c = await u.client.payments.cancel.mutate();
      assert.equal(c.autoRenew, false);
      assert.equal(c.plan, 'premium');
      assert.equal(Date.parse(c.until!), end2 + premium.periodDays * 86_400_000);
      assert.deepEqual(await pay.runRenewals(Date.parse(c.until!) + 1), { renewed: 0, downgraded: 1 });
      assert.equal((await u.client.payments.entitlements.query()).plan, 'free');
      await assertLedgerConsistent(replica.database);
    });

    test('7 account.export includes the ledger; account.delete keeps the ledger rows, detached from personal data', async () => {
      const { a, b, conv } = await pair();
      await grant(a.username, 400);
      await a.client.payments.tip.mutate({ conversationId: conv, toUserId: b.id, amount: 150, idempotencyKey: key() });
      const exp = (await a.client.account.export.query()) as any;
      assert.equal(exp.payments.balance, 250);
      assert.deepEqual(
        exp.payments.postings.map((p: any) => [p.kind, p.amount]),
        [
          ['grant', 400],
          ['tip', -150],
        ],
      );
      const before = await ledgerSnapshot(replica.database);
      await a.client.account.delete.mutate({ password: a.password });
      const after = await ledgerSnapshot(replica.database);
      assert.deepEqual(after.transfers, before.transfers);
      assert.deepEqual(after.postings, before.postings);
      assert.equal((await b.client.payments.balance.query()).balance, 150);
      await assertLedgerConsistent(replica.database);
    });
  });
}

for (const kind of dbKinds) {
  describe(`payments without Stripe configured on ${kind}`, () => {
    const replica = replicaPerSuite(kind);

    test('7 createTopUp is PRECONDITION_FAILED and the rest works; webhooks answer 503', async () => {
      const u = await newUser(replica.port, 'nostripe');
      assert.equal(await errorCode(u.client.payments.createTopUp.mutate({ amount: 500 })), 'PRECONDITION_FAILED');
      assert.deepEqual(await u.client.payments.balance.query(), { currency: 'usd', balance: 0, debt: 0 });
      assert.equal((await u.client.payments.entitlements.query()).plan, 'free');
      assert.ok((await u.client.payments.plans.query()).length >= 2);
      const r = await deliver(replica.port, paymentSucceeded('pi_x', 100));
      assert.equal(r.status, 503);
    });
  });
}
