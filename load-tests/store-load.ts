/**
 * The hub's write path without sockets: the EventWriter (group commit across conversations)
 * over the configured message store, driven by PRODUCERS concurrent writers, each keeping one
 * send in flight to a random conversation of CONVS, for DURATION_S seconds. Prints one JSON line:
 * appends per second, this process's CPU seconds, and append latency percentiles. The bench runs
 * it as its `store` scenarios (PostgreSQL, and Cassandra with --cassandra), sampling the
 * database's CPU alongside.
 *
 * Env: the hub's own variables (DATABASE_URL, MESSAGE_STORE, CASSANDRA_*), plus CONVS,
 * PRODUCERS, DURATION_S, BODY_SIZE.
 */
import { randomUUID } from 'node:crypto';
import { testConfig } from '../server/src/config.ts';
import { openDatabase } from '../server/src/db/database.ts';
import { EventWriter } from '../server/src/hub/event-writer.ts';
import { createLogger } from '../server/src/observability/logger.ts';
import { openMessageStore } from '../server/src/store/open-message-store.ts';

const env = process.env;
const convs = Array.from({ length: Number(env.CONVS ?? 500) }, () => randomUUID());
const producers = Number(env.PRODUCERS ?? 1000);
const durationS = Number(env.DURATION_S ?? 5);
const body = 'x'.repeat(Number(env.BODY_SIZE ?? 100));

const config = testConfig({
  DATABASE_URL: env.DATABASE_URL,
  MESSAGE_STORE: env.MESSAGE_STORE,
  CASSANDRA_CONTACT_POINTS: env.CASSANDRA_CONTACT_POINTS,
  CASSANDRA_LOCAL_DC: env.CASSANDRA_LOCAL_DC,
  CASSANDRA_KEYSPACE: env.CASSANDRA_KEYSPACE,
});
const logger = createLogger({ level: 'warn', replicaId: 'store-load' });
const database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR, poolMax: config.DATABASE_POOL_MAX });
const store = await openMessageStore(config, database, logger);
let appended = 0;
const writer = new EventWriter(store, () => appended++);

const latencies: number[] = [];
let stop = false;
let failed = 0;
const senders = Array.from({ length: producers }, () => randomUUID());
let n = 0;
// Warm up (JIT, connections, prepared statements) before the measured window.
await Promise.all(convs.slice(0, 50).map((conv) => writer.write(conv, { id: randomUUID(), kind: 'message', from: senders[0]!, ts: Date.now(), cid: `w${conv}`, data: { body } })));

const before = process.cpuUsage();
const t0 = performance.now();
const timer = setTimeout(() => (stop = true), durationS * 1000);
const startCount = appended;
await Promise.all(
  senders.map(async (from) => {
    while (!stop) {
      const conv = convs[Math.floor(Math.random() * convs.length)]!;
      const started = performance.now();
      try {
        await writer.write(conv, { id: randomUUID(), kind: 'message', from, ts: Date.now(), cid: `c${++n}`, data: { body } });
        latencies.push(performance.now() - started);
      } catch (err) {
        if (++failed === 1) logger.error({ err }, 'append failed');
      }
    }
  }),
);
const seconds = (performance.now() - t0) / 1000;
clearTimeout(timer);
const cpu = process.cpuUsage(before);
latencies.sort((a, b) => a - b);
const q = (p: number) => Math.round((latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN) * 100) / 100;
const count = appended - startCount;
process.stdout.write(
  JSON.stringify({
    appended: count,
    failed,
    seconds: Math.round(seconds * 100) / 100,
    appendsPerS: Math.round(count / seconds),
    cpuS: Math.round(((cpu.user + cpu.system) / 1e6) * 100) / 100,
    latencyP50: q(0.5),
    latencyP99: q(0.99),
  }) + '\n',
);
await store.close();
await database.close();
process.exit(failed ? 1 : 0);
