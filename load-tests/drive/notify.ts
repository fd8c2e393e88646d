/**
 * What notifications cost the fanout, and what a notification costs. Two hubs on one PostgreSQL, each its own cluster on
 * Redis: one with notifications on (a worker process beside it), one with them off, each with rooms of its own where half
 * the members hold a socket and half are offline with a push subscription. Phases alternate off, on, off, on at the same
 * send rate (the generator's fanout, one sender per room); then the pushes the local push service received (VAPID
 * checked, body decrypted) are divided by the worker's CPU seconds.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import postgres from 'postgres';
import webPush from 'web-push';
import { PushService, selfSigned } from '../../test/helpers/notify-services.ts';
import { createDatabase } from '../../test/helpers/postgres.ts';
import { cpuSeconds, round } from '../harness/procs.ts';
import { hubEnv, type ServerSet, startHubs, startNodeServer } from '../harness/servers.ts';
import { seedDatabase, type Rooms } from '../harness/seed.ts';
import type { Ctx } from '../harness/context.ts';
import { alternate, fanoutJobs } from './sockets.ts';

export async function notify(ctx: Ctx) {
  const { notifyRooms, notifySize, notifyRate, notifyS, notifyDelayMs } = ctx.sizes;
  const databaseUrl = await createDatabase(ctx.pg.url);
  await ctx.migrate(databaseUrl);
  const seed = await seedDatabase(
    databaseUrl,
    ctx.jwtSecret,
    ['off', 'on'].map((name) => ({ name, users: notifyRooms * notifySize, roomSize: notifySize })),
  );
  const tls = selfSigned();
  const vapid = webPush.generateVAPIDKeys();
  const push = await new PushService(tls, vapid.publicKey).start();
  ctx.cleanup(() => push.close());
  const online = notifySize / 2;
  const subs = (['off', 'on'] as const)
    .flatMap((g) => (seed[g] as Rooms).flatMap((r) => r.m.slice(online)))
    .map((u) => {
      const b = push.browser();
      return { id: randomUUID(), user_id: seed.users[u]!.id, endpoint: b.endpoint, ...b.subscription.keys };
    });
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  await sql`insert into push_subscriptions ${sql(subs)}`;
  await sql.end();

  const tag = randomBytes(3).toString('hex');
  const base = hubEnv({ databaseUrl, redisUrl: ctx.redis.url, redisPrefix: '', jwtSecret: ctx.jwtSecret, dataDir: ctx.work });
  const common = {
    ...base,
    VAPID_PUBLIC_KEY: vapid.publicKey,
    VAPID_PRIVATE_KEY: vapid.privateKey,
    WEBHOOK_ALLOW_PRIVATE: 'true',
    NOTIFY_PUSH_DELAY_MS: String(notifyDelayMs),
  };
  // Each hub its own rooms: as separate clusters on one database, a room on both would reach the other hub's sockets
  // only through its store sweep, and those late deliveries landed in the next phase's figures.
  const hubs: Record<'off' | 'on', ServerSet> = {
    off: await startHubs({
      replicas: 1,
      env: { ...common, REDIS_PREFIX: `off${tag}:`, NOTIFY_ENABLED: 'false' },
      label: 'Hubbub (notifications off)',
    }),
    on: await startHubs({ replicas: 1, env: { ...common, REDIS_PREFIX: `on${tag}:` }, label: 'Hubbub (notifications on)' }),
  };
  ctx.cleanup(() => Promise.all([hubs.off.stop(), hubs.on.stop()]));
  const caDir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-bench-ca-'));
  writeFileSync(path.join(caDir, 'ca.pem'), tls.cert);
  const worker = await startNodeServer({
    name: 'worker',
    entry: 'workers/src/main.ts',
    env: { ...common, REDIS_PREFIX: `on${tag}:`, NODE_ENV: 'test', LOG_LEVEL: 'info', NODE_EXTRA_CA_CERTS: path.join(caDir, 'ca.pem') },
    readyPath: '/metrics',
    readyOnMetrics: true,
  });
  ctx.cleanup(() => worker.stop());

  const w0 = cpuSeconds(worker.pid);
  const pushed0 = push.requests.length;
  // The online half of each room holds sockets; the first member sends.
  const { off, on, cpu, delivered, counters } = await alternate(ctx, (mode) => {
    const rooms = (seed[mode] as Rooms).map((r) => ({ id: r.id, m: r.m.slice(0, online) }));
    const jobs = fanoutJobs(ctx, hubs[mode], { seed, rooms, rate: notifyRate, durationS: notifyS / 2, senders: 'first' });
    return { set: hubs[mode], jobs, durationS: notifyS / 2 };
  });
  // The last push window passes and the worker empties the push queue.
  const redis = new URL(ctx.redis.url);
  const queue = new Queue('notify-push', { connection: { host: redis.hostname, port: Number(redis.port) }, prefix: `on${tag}:bull` });
  while (Object.values(await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized')).some(Boolean))
    await new Promise((r) => setTimeout(r, 200));
  await queue.close();
  const workerCpuS = cpuSeconds(worker.pid) - w0;
  const metrics = await (await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)).text();
  for (const [, outcome, v] of metrics.matchAll(/^hubbub_notify_jobs_total\{channel="push",outcome="(\w+)"\} (\d+)/gm))
    counters[`push_jobs_${outcome}`] = Number(v);
  const jobs = Object.entries(counters)
    .filter(([k]) => k.startsWith('push_jobs_'))
    .reduce((a, [, v]) => a + v, 0);
  const pushes = push.requests.slice(pushed0).filter((r) => r.status === 201).length;
  ctx.record({
    name: 'notify',
    server: 'Hubbub (1 replica on, 1 off)',
    kind: 'hubbub',
    durationS: notifyS * 2,
    counters,
    figures: {
      ...{ deliveriesOff: delivered.off, latencyP50Off: off.p50, latencyP99Off: off.p99, hubCpuOffS: round(cpu.off, 2) },
      ...{ deliveriesOn: delivered.on, latencyP50On: on.p50, latencyP99On: on.p99, hubCpuOnS: round(cpu.on, 2) },
      p99Ratio: round(on.p99 / off.p99, 3),
      hubCpuRatio: round(cpu.on / cpu.off, 3),
      pushesDelivered: pushes,
      workerCpuS: round(workerCpuS, 2),
      pushesPerWorkerCpuS: round(pushes / workerCpuS, 0),
      pushJobsPerWorkerCpuS: round(jobs / workerCpuS, 0),
    },
  });
}
