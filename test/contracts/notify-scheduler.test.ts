/**
 * The NotifyScheduler contract on the in-process scheduler and on BullMQ (real Redis, a queue
 * prefix per test, the real workers consuming), both running the real processors on PostgreSQL.
 */
import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import { Registry } from 'prom-client';
import { testConfig } from '../../server/src/config.ts';
import { openDatabase, type Database } from '../../server/src/db/database.ts';
import { redisConnection } from '../../server/src/jobs/redis-connection.ts';
import { notifyDeps, notifyIsolation } from '../../server/src/notify/notify-deps.ts';
import type { NotifyChannel } from '../../server/src/notify/notify-jobs.ts';
import { BullNotifyScheduler } from '../../server/src/notify/notify-scheduler.bullmq.ts';
import { InProcessNotifier } from '../../server/src/notify/notify-scheduler.inprocess.ts';
import { startNotifyWorkers } from '../../server/src/notify/notify-worker.bullmq.ts';
import type { NotifyDeps } from '../../server/src/notify/processors/outcome.ts';
import { createLogger } from '../../server/src/observability/logger.ts';
import { createNotifyMetrics } from '../../server/src/observability/notify-metrics.ts';
import { openMessageStore } from '../../server/src/store/open-message-store.ts';
import type { MessageStore } from '../../server/src/store/message-store.ts';
import { services } from '../helpers/env.ts';
import { testEnv, type TestEnv } from '../helpers/server.ts';
import { DELAY_MS, registerNotifySchedulerContractTests, type Run, type SchedulerFixture } from './notify-scheduler.contract.ts';

const delays: Record<NotifyChannel, number> = { push: DELAY_MS, email: DELAY_MS, webhook: DELAY_MS };
const logger = createLogger({ level: 'silent', replicaId: 'scheduler-contract' });
let te: TestEnv;
let database: Database;
let store: MessageStore;

before(async () => {
  te = await testEnv('postgres');
  database = await openDatabase({ databaseUrl: te.env.DATABASE_URL!, dataDir: 'unused' });
  await database.migrate();
  const config = testConfig(te.env);
  store = await openMessageStore(config, database, logger);
});
after(async () => {
  await store.close();
  await database.close();
  await te.cleanup();
});

/** The processors' dependencies, with every run recorded where it starts (the delivery log's first read). */
function observed(): { deps: NotifyDeps; runs: Run[]; ran(n: number): Promise<void> } {
  const config = testConfig(te.env);
  const deps = notifyDeps({
    config,
    db: database.db,
    store,
    logger,
    metrics: createNotifyMetrics(new Registry()),
    vapid: null,
    secret: 'contract',
    isolation: notifyIsolation(config, null),
  });
  const runs: Run[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const pending = deps.log.pending.bind(deps.log);
  deps.log.pending = async (user, channel, conv) => {
    runs.push({ channel, user, conv, at: Date.now() });
    for (const w of waiters) if (runs.length >= w.n) w.resolve();
    return pending(user, channel, conv);
  };
  return {
    deps,
    runs,
    // The in-process scheduler's timers are unref'd: the deadline's timer keeps the test process alive meanwhile.
    ran: (n) =>
      runs.length >= n
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const deadline = setTimeout(() => reject(new Error(`${runs.length} of ${n} jobs ran within 10 s`)), 10_000);
            waiters.push({ n, resolve: () => (clearTimeout(deadline), resolve()) });
          }),
  };
}

registerNotifySchedulerContractTests('in-process', async (): Promise<SchedulerFixture> => {
  const o = observed();
  const scheduler = new InProcessNotifier(o.deps, { delays, attempts: 1 });
  return { scheduler, runs: o.runs, ran: o.ran, cleanup: () => scheduler.close() };
});

registerNotifySchedulerContractTests('BullMQ', async (): Promise<SchedulerFixture> => {
  const o = observed();
  const connection = redisConnection(services.redisUrl());
  const prefix = `t${randomBytes(4).toString('hex')}:bull`;
  const scheduler = new BullNotifyScheduler({ connection, prefix, delays, attempts: 1 }, undefined, logger);
  const workers = startNotifyWorkers(o.deps, { connection, prefix, concurrency: 4, attempts: 1 });
  return {
    scheduler,
    runs: o.runs,
    ran: o.ran,
    cleanup: async () => {
      await workers.close();
      await scheduler.close();
    },
  };
});
