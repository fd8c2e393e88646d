import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { and, eq } from 'drizzle-orm';
import { paymentAudit } from '../../db/schema/index.ts';
import { services } from '../helpers/env.ts';
import {
  assertLedgerConsistent,
  chargeRefunded,
  deliver,
  ledgerSnapshot,
  paymentSucceeded,
  refundUpdated,
  stripeEnv,
} from '../helpers/payments.ts';
import { dbKinds, newUser, replicaPerSuite } from '../helpers/server.ts';

const key = () => randomBytes(8).toString('hex');

for (const kind of dbKinds) {
  describe(`payments edges on ${kind}: debt, refund currency, history`, () => {
    const replica = replicaPerSuite(kind, { ...stripeEnv(services.stripeApiUrl()), LOG_LEVEL: 'silent' });
    const grant = (username: string, amount: number) => replica.services.payments.grant({ username, amount, actor: 'test' });
    type User = Awaited<ReturnType<typeof newUser>>;
    async function pair() {
      const [a, b] = await Promise.all([newUser(replica.port, 'edge'), newUser(replica.port, 'edge')]);
      const g = await a.client.conversations.createGroup.mutate({ title: 'edges', memberIds: [b.id] });
      return { a, b, conv: g.id };
    }
    async function topUp(u: User, amount: number) {
      const t = await u.client.payments.createTopUp.mutate({ amount });
      assert.equal((await deliver(replica.port, paymentSucceeded(t.paymentIntentId, amount))).body?.outcome, 'applied');
      return t.paymentIntentId;
    }

    test('7 a tip received while in debt pays the debt first, the rest reaches the wallet', async () => {
      const { a, b, conv } = await pair();
      await grant(a.username, 1000);
      // b owes 500: a refund arrived before its payment's success.
      const t = await b.client.payments.createTopUp.mutate({ amount: 2000 });
      await deliver(replica.port, chargeRefunded(t.paymentIntentId, [{ id: 're_' + key(), amount: 500 }]));
      assert.deepEqual(await b.client.payments.balance.query(), { currency: 'usd', balance: 0, debt: 500 });
      await a.client.payments.tip.mutate({ conversationId: conv, toUserId: b.id, amount: 300, idempotencyKey: key() });
      assert.deepEqual(await b.client.payments.balance.query(), { currency: 'usd', balance: 0, debt: 200 });
      await a.client.payments.tip.mutate({ conversationId: conv, toUserId: b.id, amount: 300, idempotencyKey: key() });
      assert.deepEqual(await b.client.payments.balance.query(), { currency: 'usd', balance: 100, debt: 0 });
      // The payee sees each tip at its full amount.
      const h = await b.client.payments.history.query();
      assert.deepEqual(
        h.items.filter((i) => i.kind === 'tip').map((i) => [i.amount, i.counterparty]),
        [
          [300, a.id],
          [300, a.id],
        ],
      );
      assert.deepEqual(await a.client.payments.balance.query(), { currency: 'usd', balance: 400, debt: 0 });
      await assertLedgerConsistent(replica.database);
    });

    test('7 a refund Stripe later reports failed gives the money back (to the debt first), once; one reported failed before its debit moves nothing', async () => {
      const { b } = await pair();
      const balance = () => b.client.payments.balance.query();
      const pi = await topUp(b, 1000);
      const re = 're_' + key();
      await deliver(replica.port, chargeRefunded(pi, [{ id: re, amount: 1000 }]));
      assert.deepEqual(await balance(), { currency: 'usd', balance: 0, debt: 0 });
      const failed = refundUpdated(pi, { id: re, amount: 1000, status: 'failed' });
      assert.equal((await deliver(replica.port, failed)).body?.outcome, 'reversed');
      assert.deepEqual(await balance(), { currency: 'usd', balance: 1000, debt: 0 });
      // The same news again, under another event id: nothing more comes back.
      const again = refundUpdated(pi, { id: re, amount: 1000, status: 'failed' });
      assert.equal((await deliver(replica.port, again)).body?.outcome, 'already_applied');
      assert.deepEqual(await balance(), { currency: 'usd', balance: 1000, debt: 0 });
      const h = await b.client.payments.history.query();
      assert.deepEqual(
        h.items.filter((i) => i.kind === 'refund' || i.kind === 'refund_reversal').map((i) => [i.kind, i.amount]),
        [
          ['refund_reversal', 1000],
          ['refund', -1000],
        ],
      );

      // A refund that made debt: the returned money pays the debt that is left first.
      const re2 = 're_' + key();
      await deliver(replica.port, chargeRefunded(pi, [{ id: re2, amount: 1500 }]));
      assert.deepEqual(await balance(), { currency: 'usd', balance: 0, debt: 500 });
      await topUp(b, 200); // pays 200 of the debt
      assert.deepEqual(await balance(), { currency: 'usd', balance: 0, debt: 300 });
      await deliver(replica.port, refundUpdated(pi, { id: re2, amount: 1500, status: 'canceled' }));
      assert.deepEqual(await balance(), { currency: 'usd', balance: 1200, debt: 0 });

      // Failed before its debit arrived: the late debit moves nothing.
      const re3 = 're_' + key();
      assert.equal((await deliver(replica.port, refundUpdated(pi, { id: re3, amount: 400, status: 'failed' }))).body?.outcome, 'reversed');
      assert.equal((await deliver(replica.port, chargeRefunded(pi, [{ id: re3, amount: 400 }]))).body?.outcome, 'voided');
      assert.deepEqual(await balance(), { currency: 'usd', balance: 1200, debt: 0 });
      await assertLedgerConsistent(replica.database);
    });

    test("7 a refund is debited in its payment's currency: without one, the recorded top-up's; another currency or none known moves nothing and is audited", async () => {
      const u = await newUser(replica.port, 'refcur');
      const pi = await topUp(u, 1000);
      // No currency anywhere in the event, for a top-up this hub made (recorded in usd): applied.
      const plain = await deliver(replica.port, chargeRefunded(pi, [{ id: 're_' + key(), amount: 100 }], { currency: null }));
      assert.equal(plain.body?.outcome, 'applied');
      assert.deepEqual(await u.client.payments.balance.query(), { currency: 'usd', balance: 900, debt: 0 });
      const before = await ledgerSnapshot(replica.database);
      // The charge is in euros and its refund names no currency: not a usd debit.
      const euro = await deliver(
        replica.port,
        chargeRefunded(pi, [{ id: 're_' + key(), amount: 100 }], { currency: 'eur', refundCurrency: null }),
      );
      assert.equal(euro.status, 200);
      assert.equal(euro.body?.outcome, 'wrong_currency');
      // A PaymentIntent this hub never made nor credited, its owner in the metadata, no currency at all.
      const unknownPi = 'pi_' + key();
      const none = await deliver(
        replica.port,
        chargeRefunded(unknownPi, [{ id: 're_' + key(), amount: 100 }], { currency: null, userId: u.id }),
      );
      assert.equal(none.status, 200);
      assert.equal(none.body?.outcome, 'no_currency');
      const after = await ledgerSnapshot(replica.database);
      assert.deepEqual(
        [after.accounts, after.transfers, after.postings],
        [before.accounts, before.transfers, before.postings],
        'nothing moved',
      );
      assert.deepEqual(await u.client.payments.balance.query(), { currency: 'usd', balance: 900, debt: 0 });
      const audit = await replica.database.db
        .select({ meta: paymentAudit.meta })
        .from(paymentAudit)
        .where(and(eq(paymentAudit.userId, u.id), eq(paymentAudit.event, 'stripe_refund_unapplied')));
      assert.deepEqual(audit.map((r) => r.meta.reason).sort(), ['no_currency', 'wrong_currency']);
      await assertLedgerConsistent(replica.database);
    });

    test('7 history lists every movement of the wallet or debt (grant, top-up, plan, renewal, tips, refund), each once, paged one by one', async () => {
      const { a, b, conv } = await pair();
      const premium = (await a.client.payments.plans.query()).find((p) => p.id === 'premium')!;
      await grant(a.username, 500);
      const pi = await topUp(a, 2000);
      const e = await a.client.payments.subscribe.mutate({ planId: 'premium', idempotencyKey: key() });
      await replica.services.payments.runRenewals(Date.parse(e.until!) + 1);
      const spend = 2500 - 2 * premium.price - 2;
      await a.client.payments.tip.mutate({ conversationId: conv, toUserId: b.id, amount: spend, idempotencyKey: key() });
      await grant(b.username, 50);
      await b.client.payments.tip.mutate({ conversationId: conv, toUserId: a.id, amount: 50, idempotencyKey: key() });
      // 52 in the wallet: the refund takes it and books the rest as debt (two postings of a's).
      await deliver(replica.port, chargeRefunded(pi, [{ id: 're_' + key(), amount: 2000 }]));
      await grant(a.username, 1000);
      const expected = [
        ['grant', 1000],
        ['refund', -2000],
        ['tip', 50],
        ['tip', -spend],
        ['renewal', -premium.price],
        ['subscription', -premium.price],
        ['topup', 2000],
        ['grant', 500],
      ];
      const whole = await a.client.payments.history.query({ limit: 20 });
      assert.deepEqual(
        whole.items.map((i) => [i.kind, i.amount]),
        expected,
      );
      assert.equal(whole.nextCursor, null);
      const paged: [string, number][] = [];
      for (let cursor: number | undefined; ; ) {
        const page = await a.client.payments.history.query({ limit: 1, ...(cursor ? { cursor } : {}) });
        paged.push(...page.items.map((i) => [i.kind, i.amount] as [string, number]));
        if (!page.nextCursor) break;
        cursor = page.nextCursor;
      }
      assert.deepEqual(paged, expected, 'each transfer on one page, at its full amount');
      const { balance, debt } = await a.client.payments.balance.query();
      assert.equal(
        expected.reduce((s, [, x]) => s + (x as number), 0),
        balance - debt,
        'the history adds up to the balance less the debt',
      );
      await assertLedgerConsistent(replica.database);
    });
  });
}
