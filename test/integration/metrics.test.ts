import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { notifyQueues as queues, sendQueues } from '../../server/src/notify/notify-jobs.ts';
import { redisConnection as connectionOf } from '../../server/src/jobs/redis-connection.ts';
import { services } from '../helpers/env.ts';
import { spawnWorkers } from '../helpers/notify-workers.ts';
import { createDatabase } from '../helpers/postgres.ts';
import { newUser, startTestReplica, testEnv } from '../helpers/server.ts';

/**
 * Every command Redis runs, as seen by MONITOR. `settle()` sends a marker from another
 * connection and waits until the monitor has seen it: Redis feeds MONITOR in execution order,
 * so every command issued before it has then been recorded.
 */
async function redisMonitor(url: string) {
  const client = new Redis(url);
  const monitor = await client.monitor();
  const seen: string[][] = [];
  const markers = new Map<string, () => void>();
  monitor.on('monitor', (_time: string, args: string[]) => {
    seen.push(args);
    if (args[0]?.toLowerCase() === 'echo') markers.get(args[1]!)?.();
  });
  const other = new Redis(url);
  return {
    /** Commands naming a key under `prefix`, recorded since `from`. */
    countSince: (from: number, prefix: string) => seen.slice(from).filter((a) => a.some((x) => x.includes(prefix))).length,
    get length() {
      return seen.length;
    },
    async settle() {
      const marker = `marker-${randomBytes(6).toString('hex')}`;
      const reached = new Promise<void>((r) => markers.set(marker, r));
      await other.echo(marker);
      await reached;
    },
    close() {
      monitor.disconnect();
      client.disconnect();
      other.disconnect();
    },
  };
}

describe('metrics on a port of their own', () => {
  const cleanups: (() => Promise<unknown> | void)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  test('9 the public port answers /metrics 404; METRICS_PORT serves the hubbub_ metrics; neither makes a Redis call per request', async () => {
    const env = await testEnv('postgres', { redis: true });
    cleanups.push(() => env.cleanup());
    const replica = await startTestReplica(env.env);
    cleanups.push(() => replica.stop());
    assert.notEqual(replica.metricsPort, replica.port);
    await newUser(replica.port, 'metrics');
    const bull = `${env.env.REDIS_PREFIX}bull`;
    const mon = await redisMonitor(services.redisUrl());
    cleanups.push(() => mon.close());

    let from = mon.length;
    for (let i = 0; i < 20; i++) {
      const r = await fetch(`http://127.0.0.1:${replica.port}/metrics`);
      assert.equal(r.status, 404);
      assert.doesNotMatch(await r.text(), /hubbub_/);
    }
    assert.equal((await fetch(`http://127.0.0.1:${replica.port}/metrics?name=hubbub_ws_connections`)).status, 404);
    await mon.settle();
    assert.equal(mon.countSince(from, bull), 0, 'Redis commands on the queues for 20 public /metrics requests');

    from = mon.length;
    let text = '';
    for (let i = 0; i < 20; i++) {
      const r = await fetch(`http://127.0.0.1:${replica.metricsPort}/metrics`);
      assert.equal(r.status, 200);
      text = await r.text();
    }
    await mon.settle();
    assert.equal(mon.countSince(from, bull), 0, 'Redis commands on the queues for 20 scrapes of the hub');
    assert.match(text, /^hubbub_trpc_calls_total\{procedure="auth.register",code="OK"\} 1$/m);
    assert.match(text, /^hubbub_ws_connections 0$/m);
    assert.match(text, /^hubbub_ws_frames_out_total 0$/m);
    // The queues' depth is the workers' to export, once (see the workers test below).
    assert.doesNotMatch(text, /hubbub_notify_queue_depth/);
    assert.equal((await fetch(`http://127.0.0.1:${replica.metricsPort}/`)).status, 404);

    // The monitor does see queue reads: the counts above could have been non-zero.
    from = mon.length;
    const q = new Queue(queues.push, { connection: connectionOf(services.redisUrl()), prefix: bull });
    cleanups.push(() => q.close());
    await q.getJobCounts('waiting', 'delayed', 'active', 'failed');
    await mon.settle();
    assert.ok(mon.countSince(from, bull) >= 1, 'a getJobCounts shows in the monitor');
  });

  test('9 `npm run workers` serves /metrics on WORKERS_METRICS_PORT with the queue depth, and /health', async () => {
    const prefix = `t${randomBytes(4).toString('hex')}:`;
    const workers = await spawnWorkers({
      DATABASE_URL: await createDatabase(services.databaseUrl()),
      REDIS_URL: services.redisUrl(),
      REDIS_PREFIX: prefix,
    });
    cleanups.push(() => workers.stop());
    const { metricsPort } = workers;
    // A digest due in an hour: it sits in the delayed set, where the gauge must count it.
    const q = new Queue(queues.email, { connection: connectionOf(services.redisUrl()), prefix: `${prefix}bull` });
    cleanups.push(() => q.close());
    await q.add(
      'email',
      { user: '00000000-0000-4000-8000-000000000001', conv: '00000000-0000-4000-8000-000000000002', seq: 1 },
      { delay: 3_600_000 },
    );
    // A send job waiting for its retry: the per-target send queues are counted too.
    const sq = new Queue(sendQueues.webhook, { connection: connectionOf(services.redisUrl()), prefix: `${prefix}bull` });
    cleanups.push(() => sq.close());
    await sq.add(
      'webhook',
      { delivery: '00000000-0000-4000-8000-000000000003', user: '00000000-0000-4000-8000-000000000001' },
      { delay: 3_600_000 },
    );
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(text, /^hubbub_notify_queue_depth\{channel="email",state="delayed"\} 1$/m);
    assert.match(text, /^hubbub_notify_queue_depth\{channel="webhook-send",state="delayed"\} 1$/m);
    assert.match(text, /^hubbub_notify_queue_depth\{channel="push",state="waiting"\} 0$/m);
    assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/health`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/trpc/auth.me`)).status, 404);
  });
});
