import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { openDatabase, type Database } from '../../server/src/db/database.ts';
import { createLogger } from '../../server/src/observability/logger.ts';
import { openPayments } from '../../server/src/payments/open-payments.ts';
import { testConfig } from '../../server/src/config.ts';
import type { UserControl } from '../../server/src/hub/ports.ts';
import { users } from '../../db/schema/index.ts';
import { redisConnection } from '../../server/src/jobs/redis-connection.ts';
import { startRepeatingJobs } from '../../server/src/jobs/repeating-job.bullmq.ts';
import { renewalsJob, renewalsQueue } from '../../server/src/payments/renewals-job.ts';
import { services } from '../helpers/env.ts';
import { createDatabase } from '../helpers/postgres.ts';
import { assertLedgerConsistent } from '../helpers/payments.ts';

describe('renewals as a BullMQ job scheduler on real Redis and PostgreSQL, clock injected', () => {
  let database: Database;
  before(async () => {
    database = await openDatabase({ databaseUrl: await createDatabase(services.databaseUrl()), dataDir: 'unused' });
    await database.migrate();
  });
  after(async () => database?.close());

  test('7 the scheduled job renews a funded subscription, downgrades a short one, and announces the new limits', async () => {
    let clock = Date.now();
    const sent: { user: string; msg: UserControl }[] = [];
    const logger = createLogger({ level: 'silent', replicaId: 'w' });
    const { payments, plans } = openPayments(testConfig(), {
      db: database.db,
      database,
      logger,
      now: () => clock,
      controlUser: async (user, msg) => void sent.push({ user, msg }),
      writeEvent: () => Promise.reject(new Error('no events here')),
    });
    const premium = plans.find((p) => p.id === 'premium')!;
    const mk = async () => {
      const id = randomUUID();
      const username = `r_${id.slice(0, 8)}`;
      await database.db.insert(users).values({ id, email: `${id}@x.test`, username });
      return { id, username };
    };
    const rich = await mk();
    const poor = await mk();
    await payments.grant({ username: rich.username, amount: premium.price * 2, actor: 'test' });
    await payments.grant({ username: poor.username, amount: premium.price, actor: 'test' });
    const e1 = await payments.subscribe(rich.id, { planId: 'premium', idempotencyKey: 'k1' });
    await payments.subscribe(poor.id, { planId: 'premium', idempotencyKey: 'k1' });
    sent.length = 0;
    clock = Date.parse(e1.until!) + 1000;
    const workers = await startRepeatingJobs([renewalsJob({ payments, everyMs: 60_000, now: () => clock })], {
      connection: redisConnection(services.redisUrl()),
      prefix: `t${randomBytes(4).toString('hex')}`,
      logger,
    });
    try {
      const result = await new Promise((resolve, reject) => {
        workers.worker(renewalsQueue).once('completed', (_job, r) => resolve(r));
        workers.worker(renewalsQueue).once('failed', (_job, err) => reject(err));
      });
      assert.deepEqual(result, { renewed: 1, downgraded: 1 });
    } finally {
      await workers.close();
    }
    const richE = await payments.entitlements(rich.id);
    assert.equal(richE.plan, 'premium');
    assert.equal(Date.parse(richE.until!), Date.parse(e1.until!) + premium.periodDays * 86_400_000);
    assert.equal((await payments.balance(rich.id)).balance, 0);
    assert.equal((await payments.entitlements(poor.id)).plan, 'free');
    assert.equal((await payments.balance(poor.id)).balance, 0);
    const limitsTo = (u: string) =>
      sent.filter((s) => s.user === u && s.msg.k === 'limits').map((s) => JSON.parse((s.msg as { frame: string }).frame));
    assert.equal(limitsTo(poor.id).at(-1).plan, 'free');
    assert.equal(limitsTo(rich.id).at(-1).plan, 'premium');
    await assertLedgerConsistent(database);
  });
});
