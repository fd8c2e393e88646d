/**
 * One generator process (forked by runner.ts). It owns whole rooms (fanout, reconnect), a share of sockets (connect) or
 * the store's writers, binds its sockets to its own 127.0.x.y source addresses, records latencies into HdrHistograms
 * and counts everything it checks. It reports its own CPU and event-loop delay over the measured window, so the report
 * can tell a slow server from a slow generator. Phases are the runner's: the process posts a barrier and waits for the
 * absolute time to go at, so every process sends, or drops its sockets, at the same instant.
 */
import { nowMs } from './protocol.ts';
import { type Job, newHistogram, recordMs, type ToGen } from './runner.ts';
import {
  barrier,
  Clock,
  connect,
  fanout,
  finish,
  type JobOf,
  openLoop,
  post,
  reconnect,
  release,
  sleepUntil,
  warn,
  zeros,
} from './socket-jobs.ts';

// ---- api: tRPC at constant arrival rates -------------------------------------------------------------------------

async function api(job: JobOf<'api'>) {
  const clock = new Clock();
  const hists = { login_duration: newHistogram(), history_duration: newHistogram() };
  const c = zeros('login_ok', 'login_failed', 'login_dropped', 'history_ok', 'history_failed', 'history_dropped', 'api_late_starts');
  const at = await barrier('ready');
  await sleepUntil(at);
  clock.start();
  const inFlight = { login: 0, history: 0 };
  const calls: Promise<void>[] = [];
  const call = async (kind: 'login' | 'history', i: number, due: number) => {
    inFlight[kind]++;
    try {
      const base = job.bases[i % job.bases.length]!;
      let ok: boolean;
      if (kind === 'login') {
        const init = {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ login: job.logins[i % job.logins.length], password: job.password }),
        };
        const res = await fetch(`${base}/trpc/auth.login`, init);
        const j = (await res.json()) as { result?: { data?: { accessToken?: unknown } } };
        ok = res.status === 200 && typeof j.result?.data?.accessToken === 'string';
      } else {
        const h = job.histories[i % job.histories.length]!;
        const input = encodeURIComponent(JSON.stringify({ conversationId: h.conv, limit: 50 }));
        const res = await fetch(`${base}/trpc/conversations.history?input=${input}`, { headers: { authorization: `Bearer ${h.token}` } });
        await res.arrayBuffer();
        ok = res.status === 200;
      }
      // From the time the call was due, not when it started: queueing in this process counts.
      recordMs(hists[`${kind}_duration`], nowMs() - due);
      if (ok) c[`${kind}_ok`]++;
      else c[`${kind}_failed`]++, warn(`${kind} failed`);
    } catch (err) {
      c[`${kind}_failed`]++;
      warn(`${kind} failed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      inFlight[kind]--;
    }
  };
  const rates = { login: job.loginRate, history: job.historyRate };
  const loops = (['login', 'history'] as const)
    .filter((k) => rates[k] > 0)
    .map((kind) => {
      let i = 0;
      return openLoop(at, at + job.durationS * 1000, rates[kind], (due, now) => {
        if (now - due > 5) c.api_late_starts++;
        // Open loop: a due call is made now, or dropped (counted) when too many are in flight.
        if (inFlight[kind] >= job.maxInFlight[kind]) c[`${kind}_dropped`]++;
        else calls.push(call(kind, i, due));
        i++;
      });
    });
  await Promise.all(loops);
  await Promise.race([Promise.all(calls), new Promise((r) => setTimeout(r, 30_000))]);
  finish(job, clock, c, hists);
}

// ---- store: the hub's writer and message store, no sockets ---------------------------------------------------------

async function store(job: JobOf<'store'>) {
  const { randomUUID } = await import('node:crypto');
  const { testConfig } = await import('../../server/src/config.ts');
  const { openDatabase } = await import('../../server/src/db/database.ts');
  const { EventWriter } = await import('../../server/src/hub/event-writer.ts');
  const { createLogger } = await import('../../server/src/observability/logger.ts');
  const { openMessageStore } = await import('../../server/src/store/open-message-store.ts');
  const config = testConfig(job.env);
  const logger = createLogger({ level: 'warn', replicaId: 'store-load' });
  const database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR, poolMax: config.DATABASE_POOL_MAX });
  const messages = await openMessageStore(config, database, logger);
  let appended = 0;
  const writer = new EventWriter(messages, () => appended++);
  const convs = Array.from({ length: job.convs }, () => randomUUID());
  const body = 'x'.repeat(job.bodySize);
  const event = (from: string, cid: string) => ({ id: randomUUID(), kind: 'message' as const, from, ts: Date.now(), cid, data: { body } });
  // Warm-up (JIT, connections, prepared statements) before the measured window.
  await Promise.all(convs.slice(0, 50).map((conv) => writer.write(conv, event(convs[0]!, `w${conv}`))));
  const clock = new Clock();
  const latency = newHistogram();
  const c = { appended: 0, failed: 0 };
  let n = 0;
  await sleepUntil(await barrier('ready'));
  clock.start();
  const end = nowMs() + job.durationS * 1000;
  const start = appended;
  await Promise.all(
    Array.from({ length: job.producers }, async () => {
      const from = randomUUID();
      while (nowMs() < end) {
        const t = nowMs();
        try {
          await writer.write(convs[Math.floor(Math.random() * convs.length)]!, event(from, `c${++n}`));
          recordMs(latency, nowMs() - t);
        } catch (err) {
          if (++c.failed === 1) logger.error({ err }, 'append failed');
        }
      }
    }),
  );
  clock.stop();
  c.appended = appended - start;
  finish(job, clock, c, { store_append: latency });
  await messages.close();
  await database.close();
}

process.on('message', (m: ToGen) => {
  if (m.type === 'go') return release(m.name, m.at);
  const job = m.job;
  const run = { connect, fanout, reconnect, api, store }[job.kind] as (j: Job) => Promise<void>;
  run(job).catch((err: unknown) => {
    post({ type: 'log', line: `generator ${job.worker} failed: ${err instanceof Error ? err.stack : String(err)}` });
    process.exit(1);
  });
});
process.on('disconnect', () => process.exit(0));
