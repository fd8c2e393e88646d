import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { rowsOf } from '../../server/src/db/database.ts';
import type { Replica } from '../../server/src/replica.ts';
import { services } from '../helpers/env.ts';
import { assertLedgerConsistent, holdLocks, stripeEnv } from '../helpers/payments.ts';
import { newUser, startTestReplica, testEnv, trpcClient, type TestEnv } from '../helpers/server.ts';

const key = () => randomBytes(8).toString('hex');
const WALLET_OF = `select id from payment_accounts where kind = 'wallet' and user_id = $1::uuid for update`;

/**
 * Money paths raced on PostgreSQL by two hubs on one database, the way two tabs or a hub and
 * the workers meet. A test holds the user's wallet row locked, lines the calls up behind it,
 * then lets them go: every check that decides whether money moves must be made under that lock.
 */
describe('payments under concurrent callers on PostgreSQL, two hubs', () => {
  let env: TestEnv;
  let a: Replica;
  let b: Replica;
  before(async () => {
    env = await testEnv('postgres', { redis: true });
    const common = { ...stripeEnv(services.stripeApiUrl()), LOG_LEVEL: 'silent' };
    a = await startTestReplica(env.env, common);
    b = await startTestReplica(env.env, common);
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await env?.cleanup();
  });

  const q = async <T>(text: string) => rowsOf<T>(await a.database.db.execute(sql.raw(text)));
  const chargesOf = async (userId: string): Promise<Record<string, number>> =>
    Object.fromEntries(
      (
        await q<{ kind: string; n: number }>(
          `select kind, count(*)::int as n from payment_transfers where initiator = '${userId}' and kind in ('subscription', 'renewal') group by kind`,
        )
      ).map((r) => [r.kind, r.n]),
    );

  test('7 three subscribes to one plan at once, with different keys, on two hubs: one charge, one period', async () => {
    const premium = (await a.services.payments.plans()).find((p) => p.id === 'premium')!;
    const figures: number[] = [];
    for (const held of [true, true, false]) {
      const u = await newUser(a.port, 'tabs');
      await a.services.payments.grant({ username: u.username, amount: premium.price * 3, actor: 'test' });
      const apis = [u.client, trpcClient(b.port, u.accessToken), u.client];
      // Held: the three are inside their transactions, waiting on the wallet, before any commits.
      const hold = held ? await holdLocks(env.env.DATABASE_URL!, WALLET_OF, [u.id]) : null;
      const calls = apis.map((c) => c.payments.subscribe.mutate({ planId: 'premium', idempotencyKey: key() }));
      if (hold) {
        await hold.waiters(3);
        await hold.release();
      }
      const results = await Promise.all(calls);
      const charges = chargesOf(u.id);
      figures.push((await charges).subscription ?? 0);
      assert.deepEqual(await charges, { subscription: 1 }, `charges for three concurrent subscribes (held: ${held})`);
      assert.deepEqual(await u.client.payments.balance.query(), { currency: 'usd', balance: premium.price * 2, debt: 0 });
      assert.deepEqual(new Set(results.map((r) => `${r.plan} ${r.until} ${r.autoRenew}`)).size, 1, 'every caller is told the same period');
      assert.equal(results[0]!.plan, 'premium');
    }
    console.log(`[payments] subscription charges per 3 concurrent subscribes: ${figures.join(', ')}`);
    await assertLedgerConsistent(a.database);
  });

  test('7 a cancel answered while the renewal waits for the wallet stops that renewal: nothing charged, the plan then ends', async () => {
    const premium = (await a.services.payments.plans()).find((p) => p.id === 'premium')!;
    const u = await newUser(a.port, 'cancel');
    await a.services.payments.grant({ username: u.username, amount: premium.price * 2, actor: 'test' });
    const e = await u.client.payments.subscribe.mutate({ planId: 'premium', idempotencyKey: key() });
    const due = Date.parse(e.until!) + 1;
    const hold = await holdLocks(env.env.DATABASE_URL!, WALLET_OF, [u.id]);
    // The renewal job (on the other hub) has read the subscription as renewing and waits to charge.
    const renewal = b.services.payments.runRenewals(due);
    await hold.waiters(1);
    const c = await u.client.payments.cancel.mutate();
    assert.equal(c.autoRenew, false);
    await hold.release();
    await renewal;
    assert.deepEqual(await chargesOf(u.id), { subscription: 1 }, 'no renewal charged after the cancel answered');
    assert.equal((await u.client.payments.balance.query()).balance, premium.price);
    // The next run ends the cancelled plan.
    await a.services.payments.runRenewals(due);
    assert.equal((await a.services.payments.entitlements(u.id)).plan, 'free');
    assert.deepEqual(await chargesOf(u.id), { subscription: 1 });
    await assertLedgerConsistent(a.database);
  });
});
