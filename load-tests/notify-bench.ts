/**
 * `npm run bench:notify`: what notifications cost the fanout, and what a notification costs.
 *
 * Two hub replicas (child processes) on one PostgreSQL, each its own cluster on Redis: one with
 * notifications on (push after NOTIFY_PUSH_DELAY_MS, workers beside it), one with them off, each
 * with `rooms` rooms of its own of `size`, where half the members hold a socket on that hub and
 * half are offline with a push subscription. Phases alternate off, on, off, on at the same send rate; each measures
 * send→deliver latency at the online members from the timestamp in the message body. Then the
 * pushes that reached the local push service (VAPID checked, body decrypted) are divided by the
 * worker process's CPU seconds.
 *
 *   npm run bench:notify -- [--rooms 10] [--size 20] [--rate 100] [--seconds 12] [--delay 5000]
 */
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import postgres from 'postgres';
import webPush from 'web-push';
import WebSocket from 'ws';
import { AccessTokens } from '../server/src/auth/tokens.ts';
import { openDatabase } from '../server/src/db/database.ts';
import { Browser, PushService, selfSigned } from '../test/helpers/notify-services.ts';
import { createDatabase, startPostgres } from '../test/helpers/postgres.ts';
import { spawnReplica } from '../test/helpers/process-replica.ts';
import { startRedis } from '../test/helpers/redis.ts';
import { freePort } from '../test/helpers/ports.ts';
import { Queue } from 'bullmq';
import { redisConnection } from '../server/src/jobs/redis-connection.ts';
import { notifyQueues, sendQueues } from '../server/src/notify/notify-jobs.ts';

const root = path.resolve(import.meta.dirname, '..');
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const ROOMS = arg('rooms', 10);
const SIZE = arg('size', 20);
const RATE = arg('rate', 100);
const SECONDS = arg('seconds', 12);
const DELAY_MS = arg('delay', 5000);
const JWT_SECRET = 'notify-bench-secret-notify-bench-secret-42';

const cpuSeconds = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, clock ticks of 10 ms
};
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};

const step = (m: string) => process.stderr.write(`[notify-bench] ${m}\n`);

async function main() {
  const started = Date.now();
  const [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
  let databaseUrl = '';
  for (let i = 0; !databaseUrl; i++) {
    // The port opens before PostgreSQL accepts connections ("the database system is starting up").
    databaseUrl = await createDatabase(pg.url).catch((err) => {
      if (i > 60) throw err;
      return new Promise<string>((r) => setTimeout(() => r(''), 500));
    });
  }
  const database = await openDatabase({ databaseUrl, dataDir: 'unused' });
  await database.migrate();
  await database.close();

  step('services up');
  const tls = selfSigned();
  const vapid = webPush.generateVAPIDKeys();
  const push = await new PushService(tls, vapid.publicKey).start();
  const caDir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-bench-ca-'));
  writeFileSync(path.join(caDir, 'ca.pem'), tls.cert);

  // Seed straight into PostgreSQL: users, sessions (tokens signed with the hubs' secret), rooms, subscriptions.
  const sql = postgres(databaseUrl, { max: 4, onnotice: () => {} });
  const tokens = new AccessTokens(JWT_SECRET, { issuer: 'hubbub', audience: 'hubbub', ttlSeconds: 3600 });
  type U = { id: string; token: string; online: boolean; browser?: Browser };
  const rooms: { id: string; users: U[] }[] = [];
  // Each hub has rooms of its own: the two are separate clusters on one database, so a room on
  // both would reach the other hub's sockets only through its 3 s store sweep, and those late
  // deliveries (and the sweep's work) landed in the next phase's figures (p99 1.5-2.5 s).
  for (let r = 0; r < ROOMS * 2; r++) {
    const users: U[] = [];
    for (let k = 0; k < SIZE; k++) {
      const id = randomUUID();
      const sid = randomUUID();
      users.push({ id, token: await tokens.sign({ sub: id, sid }), online: k < SIZE / 2, ...(k >= SIZE / 2 ? { browser: push.browser() } : {}) });
      (users[k] as U & { sid: string }).sid = sid;
    }
    rooms.push({ id: randomUUID(), users });
  }
  const all = rooms.flatMap((r) => r.users) as (U & { sid: string })[];
  const roomsOf = { off: rooms.slice(0, ROOMS), on: rooms.slice(ROOMS) };
  await sql`insert into users ${sql(all.map((u, i) => ({ id: u.id, email: `b${i}@bench.invalid`, username: `b${i}` })))}`;
  await sql`insert into profiles ${sql(all.map((u, i) => ({ user_id: u.id, display_name: `b${i}` })))}`;
  await sql`insert into sessions ${sql(all.map((u) => ({ id: u.sid, user_id: u.id })))}`;
  await sql`insert into conversations ${sql(rooms.map((r, i) => ({ id: r.id, kind: 'group', title: `room ${i}`, created_by: r.users[0]!.id })))}`;
  await sql`insert into members ${sql(rooms.flatMap((r) => r.users.map((u) => ({ conversation_id: r.id, user_id: u.id }))))}`;
  const subs = all.filter((u) => u.browser).map((u) => ({ id: randomUUID(), user_id: u.id, ...u.browser!.subscription.keys, endpoint: u.browser!.endpoint }));
  await sql`insert into push_subscriptions ${sql(subs)}`;
  await sql.end();

  const common = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: redis.url,
    JWT_SECRET,
    VAPID_PUBLIC_KEY: vapid.publicKey,
    VAPID_PRIVATE_KEY: vapid.privateKey,
    WEBHOOK_ALLOW_PRIVATE: 'true',
    NOTIFY_PUSH_DELAY_MS: String(DELAY_MS),
    WS_RATE_PER_S: '1000',
    WS_RATE_BURST: '1000',
  };
  step(`seeded ${all.length} users in ${ROOMS} rooms`);
  const hubOff = await spawnReplica({ ...common, REDIS_PREFIX: 'off:', NOTIFY_ENABLED: 'false' });
  const hubOn = await spawnReplica({ ...common, REDIS_PREFIX: 'on:' });
  const metricsPort = await freePort();
  const worker = spawn(process.execPath, ['--import', 'tsx', 'workers/src/main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...common, REDIS_PREFIX: 'on:', NODE_ENV: 'test', LOG_LEVEL: 'info', HOST: '127.0.0.1', WORKERS_METRICS_PORT: String(metricsPort), NODE_EXTRA_CA_CERTS: path.join(caDir, 'ca.pem') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  process.on('exit', () => worker.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: worker.stdout! }).on('line', (l) => l.includes('workers started') && resolve());
    worker.once('exit', (c) => reject(new Error(`the worker exited (${c})`)));
  });

  step('hubs and worker up');
  process.once('SIGTERM', () => process.exit(143)); // the exit hooks stop the child processes
  // Every online member holds a socket on the hub of its room.
  const lat: Record<'off' | 'on', number[]> = { off: [], on: [] };
  let phase: 'off' | 'on' | null = null;
  const sockets: Record<'off' | 'on', Map<string, WebSocket>> = { off: new Map(), on: new Map() };
  for (const [name, hub] of [['off', hubOff], ['on', hubOn]] as const) {
    const open = (u: U) =>
          new Promise<void>((resolve, reject) => {
            const ws = new WebSocket(`ws://127.0.0.1:${hub.port}/ws`, { headers: { authorization: `Bearer ${u.token}` } });
            ws.on('message', (data) => {
              const f = JSON.parse(String(data));
              if (f.type === 'ready') {
                ws.send(JSON.stringify({ type: 'resume', ref: 'r', convs: {} }));
                resolve();
              } else if (f.type === 'event' && f.kind === 'message' && f.from !== u.id && phase === name) {
                lat[name].push(Date.now() - Number(String(f.body).split(' ')[0]));
              }
            });
            ws.on('error', reject);
            ws.on('unexpected-response', (_q, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
            ws.on('close', (code) => reject(new Error(`socket closed before ready (${code})`)));
            sockets[name].set(u.id, ws);
          });
    // A loaded machine refuses some upgrades (503 while the database is slow): try again.
    const retry = async (u: U) => {
      for (let i = 0; ; i++) {
        try {
          return await open(u);
        } catch (err) {
          if (i >= 5) throw err;
          await new Promise((r) => setTimeout(r, 200 * (i + 1)));
        }
      }
    };
    await Promise.all(roomsOf[name].flatMap((r) => r.users).filter((u) => u.online).map(retry));
  }

  step('sockets open');
  const cpu: Record<'off' | 'on', number> = { off: 0, on: 0 };
  let sent = 0;
  const runPhase = async (name: 'off' | 'on') => {
    phase = name;
    const hubPid = (name === 'off' ? hubOff : hubOn).child.pid!;
    const c0 = cpuSeconds(hubPid);
    const t0 = Date.now();
    let i = 0;
    await new Promise<void>((done) => {
      const tick = setInterval(() => {
        const due = Math.floor(((Date.now() - t0) / 1000) * RATE);
        for (; i < due; i++) {
          const room = roomsOf[name][i % ROOMS]!;
          sockets[name].get(room.users[0]!.id)!.send(JSON.stringify({ type: 'send', conv: room.id, cid: randomUUID(), body: `${Date.now()} bench` }));
          sent++;
        }
        if (Date.now() - t0 >= (SECONDS / 2) * 1000) {
          clearInterval(tick);
          done();
        }
      }, 5);
    });
    await new Promise((r) => setTimeout(r, 500)); // the last deliveries arrive
    cpu[name] += cpuSeconds(hubPid) - c0;
    phase = null;
  };
  const w0 = cpuSeconds(worker.pid!);
  const pushed0 = push.requests.length;
  for (const p of ['off', 'on', 'off', 'on'] as const) {
    await runPhase(p);
    step(`phase ${p} done`);
  }
  // Let the last push window pass and the worker empty the push queues (notification jobs, then their send jobs).
  const pushQueues = [notifyQueues.push, sendQueues.push].map((name) => new Queue(name, { connection: redisConnection(redis.url), prefix: 'on:bull' }));
  for (;;) {
    let busy = 0;
    for (const q of pushQueues) {
      const n = await q.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      busy += (n.waiting ?? 0) + (n.active ?? 0) + (n.delayed ?? 0) + (n.prioritized ?? 0);
    }
    if (!busy) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await Promise.all(pushQueues.map((q) => q.close()));
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const jobs: Record<string, number> = {};
  for (const m of metrics.matchAll(/^hubbub_notify_jobs_total\{channel="push",outcome="(\w+)"\} (\d+)/gm)) jobs[m[1]!] = Number(m[2]);
  const workerCpu = cpuSeconds(worker.pid!) - w0;
  const pushes = push.requests.filter((r) => r.status === 201).length - pushed0;

  const result = {
    at: new Date().toISOString(),
    setup: { rooms: ROOMS, size: SIZE, onlinePerRoom: SIZE / 2, offlinePerRoom: SIZE / 2, ratePerS: RATE, secondsPerMode: SECONDS, pushDelayMs: DELAY_MS },
    sent,
    off: { deliveries: lat.off.length, p50: pct(lat.off, 50), p99: pct(lat.off, 99), hubCpuS: +cpu.off.toFixed(2) },
    on: { deliveries: lat.on.length, p50: pct(lat.on, 50), p99: pct(lat.on, 99), hubCpuS: +cpu.on.toFixed(2) },
    p99Ratio: +(pct(lat.on, 99) / pct(lat.off, 99)).toFixed(3),
    hubCpuRatio: +(cpu.on / cpu.off).toFixed(3),
    pushesDelivered: pushes,
    workerCpuS: +workerCpu.toFixed(2),
    pushesPerWorkerCpuS: Math.round(pushes / workerCpu),
    pushJobs: jobs,
    pushJobsPerWorkerCpuS: Math.round(Object.values(jobs).reduce((a, b) => a + b, 0) / workerCpu),
    seconds: Math.round((Date.now() - started) / 1000),
  };
  console.log(JSON.stringify(result, null, 2));
  mkdirSync(path.join(root, 'load-tests', 'results'), { recursive: true });
  writeFileSync(path.join(root, 'load-tests', 'results', `notify-${result.at.replace(/[:.]/g, '-')}.json`), JSON.stringify(result, null, 2) + '\n');

  for (const m of Object.values(sockets)) for (const ws of m.values()) ws.terminate();
  worker.kill('SIGTERM');
  await Promise.all([hubOff.kill('SIGTERM'), hubOn.kill('SIGTERM'), new Promise((r) => worker.once('exit', r))]);
  await push.close();
  await Promise.all([pg.stop(), redis.stop()]);
  process.exit(0);
}

await main();
