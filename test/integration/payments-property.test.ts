import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import fc from 'fast-check';
import { TRPCClientError } from '@trpc/client';
import { testConfig } from '../../server/src/config.ts';
import { openDatabase, rowsOf, type Database } from '../../server/src/db/database.ts';
import { DomainError } from '../../server/src/errors.ts';
import { createLogger } from '../../server/src/observability/logger.ts';
import { openPayments } from '../../server/src/payments/open-payments.ts';
import type { PaymentsService } from '../../server/src/payments/payments-service.ts';
import type { Replica } from '../../server/src/replica.ts';
import { fuzzSettings } from '../fuzz/fuzz-seed.ts';
import { services } from '../helpers/env.ts';
import { assertLedgerConsistent, chargeRefunded, deliver, paymentSucceeded, stripeEnv } from '../helpers/payments.ts';
import { newUser, startTestReplica, testEnv, trpcClient, type Client, type TestEnv } from '../helpers/server.ts';

const DAY_MS = 86_400_000;
const LIMITS = { sendRatePerS: 50, sendBurst: 200, connectionsPerUser: 50, groupMembers: 500, historyDepth: 1_000_000 };
const PLANS = [
  { id: 'premium', name: 'Premium', price: 300, periodDays: 30, limits: LIMITS },
  { id: 'pro', name: 'Pro', price: 700, periodDays: 7, limits: LIMITS },
];
const USERS = 4;
const rid = () => randomBytes(6).toString('hex');

/** One money mutation; `again` repeats an earlier request (same key or event) when there is one. */
type Op =
  | { k: 'subscribe'; u: number; plan: string; via: number; again: boolean }
  | { k: 'cancel'; u: number; via: number }
  | { k: 'renew'; days: number; via: number }
  | { k: 'grant'; u: number; amount: number; again: boolean }
  | { k: 'tip'; from: number; to: number; amount: number; hub: number; again: boolean }
  | { k: 'topup'; u: number; amount: number; hub: number; again: boolean; twice: boolean }
  | { k: 'refund'; pick: number; part: number; hub: number; again: boolean };

const user = fc.integer({ min: 0, max: USERS - 1 });
const two = fc.integer({ min: 0, max: 1 });
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant('subscribe' as const),
      u: user,
      plan: fc.constantFrom('premium', 'pro'),
      via: two,
      again: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('cancel' as const), u: user, via: two }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('renew' as const), days: fc.integer({ min: 0, max: 40 }), via: two }) },
  {
    weight: 2,
    arbitrary: fc.record({ k: fc.constant('grant' as const), u: user, amount: fc.integer({ min: 1, max: 900 }), again: fc.boolean() }),
  },
  {
    weight: 4,
    arbitrary: fc
      .record({
        k: fc.constant('tip' as const),
        from: user,
        to: fc.integer({ min: 1, max: USERS - 1 }),
        amount: fc.integer({ min: 1, max: 400 }),
        hub: two,
        again: fc.boolean(),
      })
      .map((t) => ({ ...t, to: (t.from + t.to) % USERS })),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('topup' as const),
      u: user,
      amount: fc.integer({ min: 100, max: 1500 }),
      hub: two,
      again: fc.boolean(),
      twice: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('refund' as const),
      pick: fc.nat(),
      part: fc.double({ min: 0.05, max: 1, noNaN: true }),
      hub: two,
      again: fc.boolean(),
    }),
  },
);

/**
 * Every money mutation at once, in random mixes, on PostgreSQL: tips and Stripe webhooks through
 * two hubs, subscribe, cancel (and resume), renewals and grants through two more payments
 * services on their own connection pools (as the workers run them), all sharing one clock that
 * renewals move forward. After each batch the ledger's invariants must hold.
 */
describe('payments property: concurrent money mutations on PostgreSQL keep the ledger whole', () => {
  let env: TestEnv;
  const hubs: Replica[] = [];
  const pools: Database[] = [];
  const svcs: PaymentsService[] = [];
  let clock = Date.now();
  const users: { id: string; username: string; apis: Client[] }[] = [];
  let conv = '';
  before(async () => {
    env = await testEnv('postgres', { redis: true });
    const common = { ...stripeEnv(services.stripeApiUrl()), PAYMENTS_PLANS: JSON.stringify(PLANS), LOG_LEVEL: 'silent' };
    hubs.push(await startTestReplica(env.env, common), await startTestReplica(env.env, common));
    const config = testConfig({ ...env.env, ...common });
    for (let i = 0; i < 2; i++) {
      const database = await openDatabase({ databaseUrl: env.env.DATABASE_URL, dataDir: 'unused', poolMax: 5 });
      pools.push(database);
      const { payments } = openPayments(config, {
        db: database.db,
        database,
        logger: createLogger({ level: 'silent', replicaId: `svc${i}` }),
        now: () => clock,
        controlUser: async () => {},
        writeEvent: () => Promise.reject(new Error('these services write no events')),
      });
      svcs.push(payments);
    }
    for (let i = 0; i < USERS; i++) {
      const u = await newUser(hubs[0]!.port, 'prop');
      users.push({ id: u.id, username: u.username, apis: [u.client, trpcClient(hubs[1]!.port, u.accessToken)] });
    }
    conv = (await users[0]!.apis[0]!.conversations.createGroup.mutate({ title: 'money', memberIds: users.slice(1).map((u) => u.id) })).id;
  });
  after(async () => {
    for (const h of hubs) await h.stop();
    for (const p of pools) await p.close();
    await env?.cleanup();
  });

  // What earlier batches did, for `again` (a repeated key or event).
  const subs: { u: number; plan: string; key: string }[] = [];
  const grants: { u: number; amount: number; key: string }[] = [];
  const tips: { from: number; to: number; amount: number; key: string }[] = [];
  const intents: { id: string; u: number; amount: number }[] = [];
  const refunds: { id: string; pi: string; amount: number }[] = [];
  const pickAgain = <T>(again: boolean, list: T[], match: (x: T) => boolean) => (again ? list.filter(match).at(-1) : undefined);

  /** Runs one op; a refusal the contract allows resolves, anything else rejects. */
  async function run(o: Op): Promise<void> {
    const hub = (i: number) => hubs[i]!.port;
    switch (o.k) {
      case 'subscribe': {
        const prior = pickAgain(o.again, subs, (s) => s.u === o.u && s.plan === o.plan);
        const key = prior?.key ?? rid();
        if (!prior) subs.push({ u: o.u, plan: o.plan, key });
        return void (await svcs[o.via]!.subscribe(users[o.u]!.id, { planId: o.plan, idempotencyKey: key }));
      }
      case 'cancel':
        return void (await svcs[o.via]!.cancel(users[o.u]!.id));
      case 'renew':
        clock += o.days * DAY_MS;
        return void (await svcs[o.via]!.runRenewals(clock));
      case 'grant': {
        const prior = pickAgain(o.again, grants, (g) => g.u === o.u);
        const g = prior ?? { u: o.u, amount: o.amount, key: rid() };
        if (!prior) grants.push(g);
        return void (await svcs[0]!.grant({ username: users[g.u]!.username, amount: g.amount, actor: 'property', key: g.key }));
      }
      case 'tip': {
        const prior = pickAgain(o.again, tips, (t) => t.from === o.from);
        const t = prior ?? { from: o.from, to: o.to, amount: o.amount, key: rid() };
        if (!prior) tips.push(t);
        return void (await users[t.from]!.apis[o.hub]!.payments.tip.mutate({
          conversationId: conv,
          toUserId: users[t.to]!.id,
          amount: t.amount,
          idempotencyKey: t.key,
        }));
      }
      case 'topup': {
        let pi = pickAgain(o.again, intents, (p) => p.u === o.u);
        if (!pi) {
          const made = await users[o.u]!.apis[o.hub]!.payments.createTopUp.mutate({ amount: o.amount });
          pi = { id: made.paymentIntentId, u: o.u, amount: made.amount };
          intents.push(pi);
        }
        const event = paymentSucceeded(pi.id, pi.amount);
        const replies = await Promise.all((o.twice ? [0, 1] : [o.hub]).map((h) => deliver(hub(h), event)));
        for (const r of replies) assert.equal(r.status, 200, JSON.stringify(r.body));
        return;
      }
      case 'refund': {
        const prior = pickAgain(o.again, refunds, () => true);
        let r = prior;
        if (!r) {
          // A refund of an intent made earlier, paid or not yet (then it arrives before its success).
          const pi = intents.length ? intents[o.pick % intents.length]! : null;
          if (!pi) return;
          r = { id: 're_' + rid(), pi: pi.id, amount: Math.max(1, Math.floor(pi.amount * o.part)) };
          refunds.push(r);
        }
        const reply = await deliver(hub(o.hub), chargeRefunded(r.pi, [{ id: r.id, amount: r.amount }]));
        assert.equal(reply.status, 200, JSON.stringify(reply.body));
        return;
      }
    }
  }

  const allowed = (err: unknown) => {
    const code =
      err instanceof DomainError ? err.code : err instanceof TRPCClientError ? (err.data as { code?: string } | undefined)?.code : null;
    return code === 'PRECONDITION_FAILED' || code === 'CONFLICT';
  };

  async function checkInvariants(seedNote: string) {
    const database = hubs[0]!.database;
    await assertLedgerConsistent(database);
    const q = async <T>(text: string) => rowsOf<T>(await database.db.execute(sql.raw(text))).map((r) => ({ ...r }));
    const both = await q<{
      user_id: string;
    }>(`select w.user_id from payment_accounts w join payment_accounts d on d.user_id = w.user_id and d.kind = 'debt'
      where w.kind = 'wallet' and w.balance > 0 and d.balance < 0`);
    assert.deepEqual(both, [], `${seedNote}: nobody holds money while owing (credits pay the debt first)`);
    const charges = await q<{
      initiator: string;
      kind: string;
      plan: string;
      end: string;
      first: string;
    }>(`select t.initiator, t.kind, t.metadata->>'planId' as plan,
        t.metadata->>'periodEnd' as "end", min(p.id)::text as first
      from payment_transfers t join payment_postings p on p.transfer_id = t.id
      where t.kind in ('subscription', 'renewal') group by t.id order by min(p.id)`);
    const rows = await q<{ user_id: string; plan_id: string; period_end: string | Date }>(
      'select user_id, plan_id, period_end from payment_subscriptions',
    );
    const period = new Map(PLANS.map((p) => [p.id, p.periodDays * DAY_MS]));
    for (const u of users) {
      const mine = charges.filter((c) => c.initiator === u.id);
      for (let i = 1; i < mine.length; i++) {
        const [prev, cur] = [mine[i - 1]!, mine[i]!];
        const start = Date.parse(cur.end) - period.get(cur.plan)!;
        if (cur.kind === 'renewal') assert.equal(cur.plan, prev.plan, `${seedNote}: a renewal continues the plan it renews`);
        if (cur.plan === prev.plan) {
          assert.ok(
            start >= Date.parse(prev.end),
            `${seedNote}: one charge per period: ${u.id} charged ${cur.kind} ${cur.plan} from ${new Date(start).toISOString()}, inside the period paid to ${prev.end}`,
          );
        }
      }
      const row = rows.find((r) => r.user_id === u.id);
      if (row) {
        const last = mine.at(-1);
        assert.ok(last, `${seedNote}: a subscription row without a charge`);
        assert.deepEqual(
          [row.plan_id, new Date(row.period_end).toISOString()],
          [last.plan, last.end],
          `${seedNote}: the subscription is the period of its last charge`,
        );
      }
      // The history a user sees adds up to what they hold less what they owe.
      let sum = 0;
      for (let cursor: number | null | undefined; cursor !== null; ) {
        const page = await svcs[0]!.history(u.id, { limit: 100, ...(cursor ? { cursor } : {}) });
        sum += page.items.reduce((s, i) => s + i.amount, 0);
        cursor = page.nextCursor;
      }
      const b = await svcs[0]!.balance(u.id);
      assert.equal(sum, b.balance - b.debt, `${seedNote}: ${u.id}'s history adds up to balance less debt`);
    }
  }

  test('7 random mixes of every money mutation, fired at once: postings sum to zero, no negative wallet, balances equal postings, one period per charge', {
    timeout: 120_000,
  }, async () => {
    const settings = fuzzSettings('payments property', Number(process.env.PAYMENTS_PROPERTY_RUNS ?? 40));
    const note = `FUZZ_SEED=${settings.seed}`;
    let batches = 0;
    let moved = 0;
    const t0 = Date.now();
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 8, maxLength: 30 }), async (ops) => {
        const results = await Promise.allSettled(ops.map((o) => run(o)));
        const unexpected = results.flatMap((r, i) =>
          r.status === 'rejected' && !allowed(r.reason) ? [`${JSON.stringify(ops[i])}: ${(r.reason as Error)?.stack ?? r.reason}`] : [],
        );
        assert.deepEqual(unexpected, [], `${note}: only refusals the contract allows`);
        await checkInvariants(note);
        batches++;
        moved += results.filter((r) => r.status === 'fulfilled').length;
      }),
      settings,
    );
    const [{ n }] = rowsOf<{ n: number }>(await hubs[0]!.database.db.execute(sql`select count(*)::int as n from payment_transfers`)) as [
      { n: number },
    ];
    console.log(
      `[payments property] ${batches} batches, ${moved} calls answered, ${n} transfers, ${((Date.now() - t0) / 1000).toFixed(1)} s (${note})`,
    );
    assert.ok(n > batches, `${note}: the batches moved money (${n} transfers)`);
  });
});
