import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot, sample, type Sample, type Watched } from './procs.ts';

/** One metric of k6's --summary-export: trend stats, or count/rate, plus threshold results. */
export interface K6Metric {
  count?: number;
  rate?: number;
  value?: number;
  avg?: number;
  min?: number;
  med?: number;
  max?: number;
  'p(90)'?: number;
  'p(95)'?: number;
  'p(99)'?: number;
  'p(99.9)'?: number;
  /** expression → true when the threshold was crossed (failed), as k6's legacy export says it */
  thresholds?: Record<string, boolean>;
}

export interface K6Run {
  script: string;
  exitCode: number;
  /** k6 exits 99 when a threshold failed. */
  thresholdsOk: boolean;
  failedThresholds: string[];
  metrics: Record<string, K6Metric>;
  durationS: number;
  /** CPU/RSS samples of the watched processes over the whole run. */
  samples: Sample[];
  /** Samples taken at the start and end of the script's send window, when it announced one. */
  window: { start: number; end: number; before: Sample; after: Sample } | null;
  /** The last lines k6 printed (warnings, errors). */
  tail: string[];
  k6Pid: number;
}

/**
 * Runs one k6 script to the end, sampling the watched processes every `sampleMs`. A script
 * that prints `BENCH_SEND_WINDOW start=<ms> end=<ms>` gets samples taken at exactly those
 * moments (plus `windowTailMs` for the last deliveries), so CPU per delivery leaves out the
 * connection phase.
 */
export async function runK6(opts: {
  k6: string;
  script: string;
  env: Record<string, string | number>;
  watch: Watched[];
  outDir: string;
  tag: string;
  sampleMs?: number;
  windowTailMs?: number;
  onSample?: (s: Sample) => void | Promise<void>;
  log?: (line: string) => void;
}): Promise<K6Run> {
  const summaryFile = path.join(opts.outDir, `${opts.tag}.summary.json`);
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', K6_NO_USAGE_REPORT: 'true' };
  for (const [k, v] of Object.entries(opts.env)) env[k] = String(v);
  const args = [
    'run',
    '--quiet',
    '--no-usage-report',
    '--no-color',
    '--address=',
    `--summary-export=${summaryFile}`,
    '--summary-trend-stats=avg,min,med,max,p(90),p(95),p(99),p(99.9),count',
    '--system-tags=status,error,check,scenario',
    path.join(repoRoot, 'load-tests', opts.script),
  ];
  const started = Date.now();
  const child = spawn(opts.k6, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const watch: Watched[] = [...opts.watch, { name: 'k6', pids: () => [child.pid!] }];
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  const tail: string[] = [];
  const samples: Sample[] = [];
  let window: K6Run['window'] = null;
  let windowTimers: NodeJS.Timeout[] = [];
  let afterTaken = false;
  const onLine = (line: string) => {
    tail.push(line);
    if (tail.length > 60) tail.shift();
    const m = /BENCH_SEND_WINDOW start=(\d+) end=(\d+)/.exec(line);
    if (m && !window) {
      const start = Number(m[1]);
      const end = Number(m[2]);
      const w: NonNullable<K6Run['window']> = { start, end, before: sample(watch), after: sample(watch) };
      window = w;
      windowTimers.push(setTimeout(() => (w.before = sample(watch)), Math.max(0, start - Date.now())));
      windowTimers.push(
        setTimeout(() => {
          w.after = sample(watch);
          afterTaken = true;
        }, Math.max(0, end + (opts.windowTailMs ?? 500) - Date.now())),
      );
    }
    if (opts.log && /level=(warning|error)|BENCH_|ERRO|WARN/.test(line)) opts.log(line);
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', onLine);
  const every = setInterval(() => {
    const s = sample(watch);
    samples.push(s);
    void opts.onSample?.(s);
  }, opts.sampleMs ?? 500);
  const exitCode: number = await new Promise((r) => child.once('exit', (code, sig) => r(code ?? (sig ? 128 : 1))));
  process.off('exit', killOnExit);
  clearInterval(every);
  for (const t of windowTimers) clearTimeout(t);
  windowTimers = [];
  const last = sample(watch);
  // k6 itself is gone by now: keep its CPU from the last sample taken while it ran.
  const prev = samples.at(-1);
  if (prev && !last.cpu.k6) last.cpu.k6 = prev.cpu.k6 ?? 0;
  samples.push(last);
  // k6 finished its drain before the tail sample was due: its exit is the end of the window.
  const w = window as K6Run['window'];
  if (w && !afterTaken) w.after = last;

  let metrics: Record<string, K6Metric> = {};
  if (existsSync(summaryFile)) metrics = (JSON.parse(readFileSync(summaryFile, 'utf8')) as { metrics: Record<string, K6Metric> }).metrics;
  const failedThresholds: string[] = [];
  for (const [name, m] of Object.entries(metrics)) {
    for (const [expr, crossed] of Object.entries(m.thresholds ?? {})) if (crossed) failedThresholds.push(`${name}: ${expr}`);
  }
  return {
    script: opts.script,
    exitCode,
    thresholdsOk: exitCode === 0,
    failedThresholds,
    metrics,
    durationS: (Date.now() - started) / 1000,
    samples,
    window,
    tail,
    k6Pid: child.pid!,
  };
}

/** Percentile stat of a k6 trend, or NaN. */
export const stat = (run: K6Run | undefined, metric: string, key: keyof K6Metric): number => {
  const v = run?.metrics[metric]?.[key];
  return typeof v === 'number' ? v : NaN;
};
