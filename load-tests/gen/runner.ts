/**
 * The runner side of the load generator: what each process is handed (a job) and reports, the HdrHistograms they record
 * into (µs, 3 significant digits), and runGenerator, which forks one process per job (worker.ts), releases each barrier
 * once every process reached it (at a common start time) and merges the reports: counters summed, histograms added,
 * CPU summed, event-loop delay the worst process's, connect progress summed per 100 ms.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import hdr from 'hdr-histogram-js';
import type { ServerKind } from './protocol.ts';

export type Target = { url: string; token: string };
type Rooms = { id: string; members: Target[] }[];
type SocketJob = { proto: ServerKind; connectTimeoutS: number; handshakeTimeoutMs: number };
/** Sockets opened up to each of `steps` in turn (barrier `connected:<i>` after each; all at once without), `inFlight` handshakes at most. */
export type ConnectJob = SocketJob & { kind: 'connect'; sockets: Target[]; steps?: number[]; inFlight?: number };
/** `rate`: open loop at `rate` sends/s (this process's share); `max`: `window` sends in flight per room, from its first member. */
export type FanoutJob = SocketJob & { kind: 'fanout'; rooms: Rooms; mode: 'rate' | 'max'; rate: number; window: number } & {
  senders: 'rotate' | 'first';
  durationS: number;
  drainS: number;
  bodySize: number;
  runId: string;
};
/** members[0]'s token also opens the room's sender socket, which stays up through the storm. */
type ReconnectJob = SocketJob & {
  kind: 'reconnect';
  rooms: Rooms;
  warm: number;
  missed: number;
  live: number;
  resumeTimeoutS: number;
  runId: string;
};
/** At most `maxInFlight` calls of each kind in flight; a due call beyond it is dropped (counted). */
type ApiJob = {
  kind: 'api';
  bases: string[];
  loginRate: number;
  historyRate: number;
  durationS: number;
  password: string;
  logins: string[];
} & {
  histories: { conv: string; token: string }[];
  maxInFlight: { login: number; history: number };
};
/** The hub's write path without sockets: its EventWriter over the configured message store, `producers` writers. */
type StoreJob = { kind: 'store'; env: Record<string, string>; convs: number; producers: number; durationS: number; bodySize: number };
export type JobSpec = ConnectJob | FanoutJob | ReconnectJob | ApiJob | StoreJob;
export type Job = JobSpec & { worker: number; addresses: string[] };

export type ToGen = { type: 'job'; job: Job } | { type: 'go'; name: string; at: number };
export type FromGen =
  | { type: 'barrier'; name: string; info: Record<string, number> }
  | { type: 'log'; line: string }
  | { type: 'done'; report: GenReport };
/**
 * A process's report: compressed histograms by name, CPU seconds over the measured window and the whole job,
 * event-loop delay over the window (ms), sockets that finished their handshake per 100 ms since the go.
 */
export interface GenReport {
  worker: number;
  counters: Record<string, number>;
  hists: Record<string, string>;
  windowCpuS: number;
  totalCpuS: number;
  windowS: number;
  eld: { p50: number; p99: number; max: number };
  timeline?: number[];
}

export type Histogram = ReturnType<typeof hdr.build>;
const MAX_US = 3_600_000_000;
export const newHistogram = (): Histogram =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: MAX_US, numberOfSignificantValueDigits: 3 });
/** Records milliseconds as whole µs (negatives, from clock skew, as 1 µs). */
export const recordMs = (h: Histogram, ms: number) => h.recordValue(Math.min(MAX_US, Math.max(1, Math.round(ms * 1000))));
export const encodeHistogram = (h: Histogram): string => hdr.encodeIntoCompressedBase64(h);

export type HistSummary = { count: number; mean: number; p50: number; p90: number; p95: number; p99: number; p999: number; max: number };
const ms = (us: number) => Math.round(us) / 1000;
export const summarize = (h: Histogram): HistSummary => {
  const at = (p: number) => (h.totalCount ? ms(p === 100 ? h.maxValue : h.getValueAtPercentile(p)) : NaN);
  const [p50, p90, p95, p99, p999, max] = [50, 90, 95, 99, 99.9, 100].map(at) as [number, number, number, number, number, number];
  return { count: h.totalCount, mean: h.totalCount ? ms(h.mean) : NaN, p50, p90, p95, p99, p999, max };
};
const PERCENTILES = [0, 10, 25, 50, 75, 90, 95, 97, 98, 99, 99.5, 99.7, 99.8, 99.9, 99.95, 99.97, 99.99, 100];

export interface GenResult {
  counters: Record<string, number>;
  hists: Record<string, HistSummary>;
  /** The merged histograms themselves, for scenarios that add runs together; percentile → ms points for charts. */
  raw: Record<string, Histogram>;
  distributions: Record<string, { p: number; ms: number }[]>;
  generator: { processes: number; windowCpuS: number; totalCpuS: number; windowS: number; eldP99Ms: number; eldMaxMs: number };
  timeline: number[];
  /** When each barrier was released (epoch ms). */
  released: Record<string, number>;
  logs: string[];
}

/** Splits `items` into `n` near-equal interleaved shares. */
export function shares<T>(items: T[], n: number): T[][] {
  const out: T[][] = Array.from({ length: Math.max(1, n) }, () => []);
  items.forEach((x, i) => out[i % out.length]!.push(x));
  return out.filter((s) => s.length > 0);
}

/** `onBarrier`: every process reached barrier `name`; returns the time to go at (default now + 300 ms). */
export async function runGenerator(opts: {
  jobs: JobSpec[];
  onBarrier?: (name: string, infos: Record<string, number>[]) => Promise<number | void> | number | void;
  timeoutMs: number;
  log?: (line: string) => void;
}): Promise<GenResult> {
  const [procs, reports, logs]: [ChildProcess[], GenReport[], string[]] = [[], [], []];
  const released: Record<string, number> = {};
  const waiting = new Map<string, Record<string, number>[]>();
  const killAll = () => procs.forEach((p) => p.kill('SIGKILL'));
  process.on('exit', killAll);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`load generator did not finish in ${opts.timeoutMs / 1000} s`)), opts.timeoutMs);
      const finish = (err?: unknown) => (clearTimeout(timer), err ? reject(err) : resolve());
      opts.jobs.forEach((spec, w) => {
        const worker = fileURLToPath(new URL('./worker.ts', import.meta.url));
        const child = fork(worker, [], {
          execArgv: ['--import', 'tsx'],
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
          serialization: 'advanced',
        });
        procs.push(child);
        child.on('message', (m: FromGen) => {
          if (m.type === 'log') return (logs.push(`gen ${w}: ${m.line}`), opts.log?.(`gen ${w}: ${m.line.slice(0, 300)}`));
          if (m.type === 'done') return reports.push(m.report) === opts.jobs.length && finish();
          const list = [...(waiting.get(m.name) ?? []), m.info];
          waiting.set(m.name, list);
          if (list.length < opts.jobs.length) return;
          Promise.resolve(opts.onBarrier?.(m.name, list)).then((when) => {
            const at = (released[m.name] = when || Date.now() + 300);
            for (const p of procs) p.send({ type: 'go', name: m.name, at } satisfies ToGen);
          }, finish);
        });
        child.once('exit', (code) => {
          if (!reports.some((r) => r.worker === w))
            finish(new Error(`generator process ${w} exited with ${code} before reporting${logs.length ? `: ${logs.at(-1)}` : ''}`));
        });
        // 40 source addresses of its own, disjoint across processes, so no one address runs out of ports.
        const addresses = Array.from({ length: 40 }, (_, i) => `127.0.${100 + w}.${1 + i}`);
        child.send({ type: 'job', job: { ...spec, worker: w, addresses } } satisfies ToGen);
      });
    });
  } finally {
    process.off('exit', killAll);
    // Disconnected, each process exits on its own.
    for (const p of procs) if (p.exitCode === null && p.connected) p.disconnect();
  }
  return merge(reports, released, logs);
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;
export function merge(reports: GenReport[], released: Record<string, number> = {}, logs: string[] = []): GenResult {
  const [counters, raw, timeline]: [Record<string, number>, Record<string, Histogram>, number[]] = [{}, {}, []];
  for (const r of reports) {
    for (const [k, v] of Object.entries(r.counters)) counters[k] = (counters[k] ?? 0) + v;
    for (const [k, enc] of Object.entries(r.hists)) (raw[k] ??= newHistogram()).add(hdr.decodeFromCompressedBase64(enc) as Histogram);
    (r.timeline ?? []).forEach((n, i) => (timeline[i] = (timeline[i] ?? 0) + n));
  }
  const sum = (f: (r: GenReport) => number) => round3(reports.reduce((a, r) => a + f(r), 0));
  const max = (f: (r: GenReport) => number) => Math.max(0, ...reports.map(f));
  const dist = (h: Histogram) =>
    h.totalCount ? PERCENTILES.map((p) => ({ p, ms: ms(p === 100 ? h.maxValue : h.getValueAtPercentile(p || 0.0001)) })) : [];
  return {
    ...{ counters, raw, timeline: Array.from(timeline, (n) => n ?? 0), released, logs },
    hists: Object.fromEntries(Object.entries(raw).map(([k, h]) => [k, summarize(h)])),
    distributions: Object.fromEntries(Object.entries(raw).map(([k, h]) => [k, dist(h)])),
    generator: {
      ...{ processes: reports.length, windowCpuS: sum((r) => r.windowCpuS), totalCpuS: sum((r) => r.totalCpuS) },
      ...{ windowS: round3(max((r) => r.windowS)), eldP99Ms: max((r) => r.eld.p99), eldMaxMs: max((r) => r.eld.max) },
    },
  };
}
