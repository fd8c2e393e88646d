/**
 * The runner side of the load generator: forks one process per job (gen/worker.ts), releases
 * every barrier once all processes reached it (with a common start time), and merges what they
 * report: counters summed, HdrHistograms added, CPU summed, event-loop delay as the worst
 * process's, connect progress summed per 100 ms.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FromGen, GenReport, Job } from './jobs.ts';
import { decodeHistogram, distribution, newHistogram, summarize, type HistSummary } from './stats.ts';

const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));

export interface GenResult {
  counters: Record<string, number>;
  hists: Record<string, HistSummary>;
  /** Percentile → ms, for the charts. */
  distributions: Record<string, { p: number; ms: number }[]>;
  generator: {
    processes: number;
    windowCpuS: number;
    totalCpuS: number;
    windowS: number;
    /** The worst process's event-loop delay in the window, ms. */
    eldP99Ms: number;
    eldMaxMs: number;
  };
  timeline: number[];
  /** Wall-clock time each barrier was released at (epoch ms), by name. */
  released: Record<string, number>;
  logs: string[];
}

/** `<w>` 127.0.x.y source addresses of generator process `w` (disjoint across processes). */
export function sourceAddresses(w: number, n = 40): string[] {
  return Array.from({ length: n }, (_, i) => `127.0.${100 + w}.${1 + i}`);
}

export async function runGenerator(opts: {
  jobs: Omit<Job, 'worker' | 'addresses'>[];
  /** Called when every process reached barrier `name`; returns the time to go at (default now + 300 ms). */
  onBarrier?: (name: string, infos: Record<string, number>[]) => Promise<number | void> | number | void;
  timeoutMs: number;
  log?: (line: string) => void;
}): Promise<GenResult> {
  const log = opts.log ?? (() => {});
  const procs: ChildProcess[] = [];
  const reports: GenReport[] = [];
  const logs: string[] = [];
  const released: Record<string, number> = {};
  const waiting = new Map<string, Record<string, number>[]>();
  let failure: string | null = null;
  const killAll = () => procs.forEach((p) => p.kill('SIGKILL'));
  process.on('exit', killAll);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`load generator did not finish in ${opts.timeoutMs / 1000} s`)), opts.timeoutMs);
      const finish = (err?: Error) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      opts.jobs.forEach((j, w) => {
        const job = { ...j, worker: w, addresses: sourceAddresses(w) } as Job;
        // BENCH_GEN_PROFILE=<dir>: each generator process writes a V8 CPU profile there (to see what the generator spends its CPU on).
        const prof = process.env.BENCH_GEN_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_GEN_PROFILE}`] : [];
        const child = fork(WORKER, [], { execArgv: [...prof, '--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
        procs.push(child);
        child.on('message', (m: FromGen) => {
          if (m.type === 'log') {
            logs.push(`gen ${w}: ${m.line}`);
            log(`gen ${w}: ${m.line.slice(0, 300)}`);
          } else if (m.type === 'done') {
            reports.push(m.report);
            if (reports.length === opts.jobs.length) finish();
          } else if (m.type === 'barrier') {
            const list = waiting.get(m.name) ?? [];
            list.push(m.info);
            waiting.set(m.name, list);
            if (list.length === opts.jobs.length) {
              void (async () => {
                const at = (await opts.onBarrier?.(m.name, list)) || Date.now() + 300;
                released[m.name] = at;
                for (const p of procs) p.send({ type: 'go', name: m.name, at });
              })().catch((err: unknown) => finish(err instanceof Error ? err : new Error(String(err))));
            }
          }
        });
        child.once('exit', (code) => {
          if (reports.length < opts.jobs.length && !reports.some((r) => r.worker === w)) {
            failure = `generator process ${w} exited with ${code} before reporting`;
            finish(new Error(`${failure}${logs.length ? `: ${logs.at(-1)}` : ''}`));
          }
        });
        child.send({ type: 'job', job });
      });
    });
  } finally {
    process.off('exit', killAll);
    // Disconnecting lets each process exit on its own (and write its profile, if asked to).
    for (const p of procs) if (p.exitCode === null && p.connected) p.disconnect();
  }
  return merge(reports, released, logs);
}

export function merge(reports: GenReport[], released: Record<string, number> = {}, logs: string[] = []): GenResult {
  const counters: Record<string, number> = {};
  const merged = new Map<string, ReturnType<typeof newHistogram>>();
  const timeline: number[] = [];
  for (const r of reports) {
    for (const [k, v] of Object.entries(r.counters)) counters[k] = (counters[k] ?? 0) + v;
    for (const [k, enc] of Object.entries(r.hists)) {
      const h = merged.get(k) ?? newHistogram();
      h.add(decodeHistogram(enc));
      merged.set(k, h);
    }
    (r.timeline ?? []).forEach((n, i) => (timeline[i] = (timeline[i] ?? 0) + n));
  }
  const hists: GenResult['hists'] = {};
  const distributions: GenResult['distributions'] = {};
  for (const [k, h] of merged) {
    hists[k] = summarize(h);
    distributions[k] = distribution(h);
  }
  for (let i = 0; i < timeline.length; i++) timeline[i] ??= 0;
  return {
    counters,
    hists,
    distributions,
    generator: {
      processes: reports.length,
      windowCpuS: round3(reports.reduce((a, r) => a + r.windowCpuS, 0)),
      totalCpuS: round3(reports.reduce((a, r) => a + r.totalCpuS, 0)),
      windowS: round3(Math.max(0, ...reports.map((r) => r.windowS))),
      eldP99Ms: Math.max(0, ...reports.map((r) => r.eld.p99)),
      eldMaxMs: Math.max(0, ...reports.map((r) => r.eld.max)),
    },
    timeline,
    released,
    logs,
  };
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Splits `items` into `n` near-equal interleaved shares (item i goes to share i mod n). */
export function shares<T>(items: T[], n: number): T[][] {
  const out: T[][] = Array.from({ length: Math.max(1, n) }, () => []);
  items.forEach((x, i) => out[i % out.length]!.push(x));
  return out.filter((s) => s.length > 0);
}
