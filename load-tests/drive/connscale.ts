/**
 * Idle sockets on one hub process in steps up to its open-file limit, a full collection in the hub before each sample:
 * RSS and V8 heap per socket as the slope over the steps.
 */
import WebSocket from 'ws';
import { freePort } from '../../test/helpers/ports.ts';
import { type JobSpec, runGenerator, shares } from '../gen/runner.ts';
import { cpuDelta, maxOpenFiles, round, rssBytes, sample } from '../harness/procs.ts';
import { hubMetrics, metricValue, startHubs } from '../harness/servers.ts';
import type { Ctx } from '../harness/context.ts';
import { serverWatch } from './sockets.ts';

/**
 * A full collection in the hub through the V8 inspector it was started with (`HeapProfiler.collectGarbage`, DevTools'
 * button), before each RSS sample: without it the per-socket slope was whether a major collection happened to run just
 * before the sample (1.4 to 4 KiB per socket from run to run). Nothing in the hub changes.
 */
async function inspectorGc(port: number) {
  const [target] = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
  const ws = new WebSocket(target!.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const waiting = new Map<number, () => void>();
  ws.on('message', (data) => waiting.get((JSON.parse(String(data)) as { id: number }).id)?.());
  let id = 0;
  const call = (method: string) =>
    new Promise<void>((resolve, reject) => {
      const n = ++id;
      const timer = setTimeout(() => reject(new Error(`inspector: no answer to ${method}`)), 60_000);
      waiting.set(n, () => (clearTimeout(timer), waiting.delete(n), resolve()));
      ws.send(JSON.stringify({ id: n, method }));
    });
  await call('HeapProfiler.enable');
  // Twice: the first collection's finalizers free what the second then reclaims.
  return Object.assign(() => call('HeapProfiler.collectGarbage').then(() => call('HeapProfiler.collectGarbage')), {
    close: () => ws.close(),
  });
}

/** Idle sockets on one hub process in steps up to its open-file limit: RSS per socket as the slope over the steps. */
export async function connscale(ctx: Ctx) {
  const { sizes, seed } = ctx;
  const inspect = await freePort();
  const hub = await startHubs({
    replicas: 1,
    env: { ...ctx.hubBase, REDIS_PREFIX: ctx.hubBase.REDIS_PREFIX + 'cs:' },
    label: 'Hubbub (1 replica)',
    firstNodeArgs: [`--inspect=127.0.0.1:${inspect}`],
  });
  ctx.cleanup(() => hub.stop());
  const gc = await inspectorGc(inspect);
  const pid = hub.procs[0]!.pid;
  // fds a hub needs besides sockets (database pool, Redis, listen socket, files), and a generator process.
  const fdLimit = maxOpenFiles(pid);
  const target = Math.min(sizes.connScaleTarget, fdLimit - 200);
  const procs = Math.max(sizes.connScaleWorkers, Math.ceil(target / (maxOpenFiles(process.pid) - 100)));
  const steps = [...Array.from({ length: Math.ceil(target / sizes.connScaleStep) - 1 }, (_, i) => (i + 1) * sizes.connScaleStep), target];
  ctx.log(`connscale: up to ${target} idle sockets on one hub (port ${hub.procs[0]!.port})`);
  const users = Array.from({ length: target }, (_, i) => ({ url: hub.urls[0]!, token: seed.users[i % seed.users.length]!.t }));
  const jobs: JobSpec[] = shares(users, procs).map((share, w, all) => ({
    kind: 'connect',
    proto: 'hubbub',
    sockets: share,
    steps: steps.map((s) => Math.floor(s / all.length) + (w < s % all.length ? 1 : 0)),
    inFlight: 64,
    connectTimeoutS: 180,
    handshakeTimeoutMs: sizes.handshakeTimeoutMs,
  }));
  // The heap gauges are set in the heap-total gauge's collect: asked for first, so that the used figure is fresh.
  const heap = async () => {
    await hubMetrics(hub.procs[0]!, 'hubbub_nodejs_heap_size_total_bytes');
    return metricValue(await hubMetrics(hub.procs[0]!, 'hubbub_nodejs_heap_size_used_bytes'), 'hubbub_nodejs_heap_size_used_bytes');
  };
  /** RSS after a full collection, once it stops falling. */
  const settledRss = async () => {
    await gc();
    let rss = rssBytes(pid);
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const now = rssBytes(pid);
      if (now >= rss - 256 * 1024) return Math.min(rss, now);
      rss = now;
    }
    return rss;
  };
  const [rss0, heap0, cpu0] = [await settledRss(), await heap(), sample([serverWatch(hub)])];
  const rows: number[][] = [];
  let failures = 0;
  const run = await runGenerator({
    jobs,
    timeoutMs: (steps.length * 180 + 120) * 1000,
    log: (l) => ctx.log(`  ${l}`),
    onBarrier: async (name, infos) => {
      if (!name.startsWith('connected:')) return;
      const open = infos.reduce((a, x) => a + x.ok!, 0);
      failures = infos.reduce((a, x) => a + x.failed!, 0);
      const rss = await settledRss();
      const h = await heap();
      const cpuS = cpuDelta(cpu0, sample([serverWatch(hub)])).server!;
      const prev = rows.at(-1);
      const slope = prev && open > prev[0]! ? round(((rss / 2 ** 20 - prev[1]!) * 1024) / (open - prev[0]!), 2) : NaN;
      rows.push([
        open,
        round(rss / 2 ** 20, 1),
        round((rss - rss0) / open / 1024, 2),
        slope,
        round(h / 2 ** 20, 1),
        round((h - heap0) / open / 1024, 2),
        round(cpuS, 1),
      ]);
      const r = rows.at(-1)!;
      ctx.log(`  connscale: ${open} sockets, hub RSS ${r[1]} MiB, ${r[2]} KiB per socket; V8 heap ${r[5]} KiB per socket`);
    },
  });
  gc.close();
  await hub.stop();
  const [first, last] = [rows[0], rows.at(-1)];
  const slope = first && last && last[0]! > first[0]! ? round(((last[1]! - first[1]!) * 1024) / (last[0]! - first[0]!), 2) : null;
  const at50k = rows.find((r) => r[0]! >= 50_000);
  const stop = target < sizes.connScaleTarget ? `capped at ${target}: the hub's open-file limit is ${fdLimit}` : 'target reached';
  const head = ['sockets', 'hub RSS MiB', 'RSS per socket KiB (above baseline)', 'RSS slope from the previous step, KiB per socket'];
  const title = `Idle sockets on one hub process (baseline RSS ${round(rss0 / 2 ** 20, 1)} MiB; ${stop}; RSS slope over the steps ${slope ?? '–'} KiB per socket)`;
  ctx.record({
    ...{ name: 'connscale', server: hub.label, kind: 'hubbub', durationS: 0 },
    counters: { ...run.counters, failures: failures + (run.counters.connect_dropped_idle ?? 0) },
    figures: {
      ...{ maxConnections: Math.max(0, ...rows.map((r) => r[0]!)), rssPerConnKiB: last?.[2] ?? null, rssSlopeKiBPerConn: slope },
      ...{ heapPerConnKiB: last?.[5] ?? null, rssPerConnKiBAt50k: at50k?.[2] ?? null, baselineRssMiB: round(rss0 / 2 ** 20, 1), stop },
    },
    points: { rss: rows.map((r) => ({ x: r[0]!, y: r[1]!, series: 'Hubbub, 1 replica (connscale)' })) },
    tables: [{ title, head: [...head, 'V8 heap MiB', 'heap per socket KiB', 'hub CPU s'], rows }],
  });
}
