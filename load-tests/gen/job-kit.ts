/**
 * What every job of a generator process shares: messages to the runner, its barriers, open-loop timing, the clock of
 * the measured window (CPU and event-loop delay), the final report, and a socket that completes the client handshake
 * (ready → resume → resumed) with retries.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { closeSocket, nowMs, openSocket, sendFrame, type Conn, type ServerFrame } from './protocol.ts';
import { encodeHistogram, type FromGen, type Histogram, type Job, type Target } from './runner.ts';

export type JobOf<K extends Job['kind']> = Extract<Job, { kind: K }>;
export const post = (m: FromGen) => process.send!(m);
let logged = 0;
export const warn = (line: string) => void (logged++ < 10 && post({ type: 'log', line }));

const goes = new Map<string, (at: number) => void>();
const early = new Map<string, number>();
/** The runner released barrier `name` at `at` (perhaps before this process reached it). */
export function release(name: string, at: number) {
  const w = goes.get(name);
  goes.delete(name);
  if (w) w(at);
  else early.set(name, at);
}
/** Posts a barrier; resolves with the time the runner releases every process at. */
export function barrier(name: string, info: Record<string, number> = {}): Promise<number> {
  post({ type: 'barrier', name, info });
  const at = early.get(name);
  return at !== undefined ? Promise.resolve(at) : new Promise((r) => goes.set(name, r));
}
export const sleepUntil = (at: number) => new Promise((r) => setTimeout(r, Math.max(0, at - nowMs())));
/** Resolves once `cond()` holds (checked every 20 ms, so an O(sockets) check stays cheap) or after `ms`. */
export const until = (cond: () => boolean, ms: number) =>
  new Promise<void>((resolve) => {
    const end = nowMs() + ms;
    const check = () => (cond() || nowMs() >= end ? resolve() : setTimeout(check, 20));
    check();
  });

/**
 * Open loop at `rate`/s from `start` to `end`: the i-th call is due at start + i/rate whatever happened before, and
 * `f(due, now)` runs as soon as this process gets to it (late ones too: the caller counts them). It sleeps until the next
 * is due: a 1 ms busy tick alone would cost more CPU than the deliveries at low rates.
 */
export function openLoop(start: number, end: number, rate: number, f: (due: number, now: number) => void): Promise<void> {
  let i = 0;
  return new Promise<void>((resolve) => {
    const tick = () => {
      for (const now = nowMs(); ; i++) {
        const due = start + (i * 1000) / rate;
        if (due >= end) return resolve();
        if (due > now) return void setTimeout(tick, Math.floor(due - now));
        f(due, now);
      }
    };
    tick();
  });
}

/** CPU and event-loop delay between start() and stop(). */
export class Clock {
  private eld = monitorEventLoopDelay({ resolution: 10 });
  private cpu0 = process.cpuUsage();
  private t0 = nowMs();
  private result: { cpuS: number; s: number; eld: { p50: number; p99: number; max: number } } | null = null;
  constructor() {
    this.eld.enable();
  }
  start() {
    this.eld.reset();
    [this.cpu0, this.t0, this.result] = [process.cpuUsage(), nowMs(), null];
  }
  stop() {
    const c = process.cpuUsage(this.cpu0);
    const ms = (ns: number) => Math.round(ns / 1e4) / 100;
    const eld = { p50: ms(this.eld.percentile(50)), p99: ms(this.eld.percentile(99)), max: ms(this.eld.max) };
    return (this.result ??= { cpuS: (c.user + c.system) / 1e6, s: (nowMs() - this.t0) / 1000, eld });
  }
}

/** Counters, all 0. */
export const zeros = <K extends string>(...keys: K[]) => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;

const jobCpu0 = process.cpuUsage();
export function finish(job: Job, clock: Clock, counters: Record<string, number>, hists: Record<string, Histogram>, timeline?: number[]) {
  const w = clock.stop();
  const total = process.cpuUsage(jobCpu0);
  const encoded = Object.fromEntries(Object.entries(hists).map(([k, h]) => [k, encodeHistogram(h)]));
  const totalCpuS = (total.user + total.system) / 1e6;
  post({
    type: 'done',
    report: { worker: job.worker, counters, hists: encoded, windowCpuS: w.cpuS, totalCpuS, windowS: w.s, eld: w.eld, timeline },
  });
}

/** Runs `f` over `items`, yielding every 25, so that opening thousands of sockets does not stall this loop. */
export async function inSlices<T>(items: T[], f: (x: T) => void) {
  for (let i = 0; i < items.length; i++) {
    f(items[i]!);
    if (i % 25 === 24) await new Promise((r) => setImmediate(r));
  }
}

// ---- a socket that completes the client handshake (ready → resume → resumed), with retries -----------------------

export interface Sock {
  t: Target;
  k: number;
  c: Conn | null;
  gen: number;
  tries: number;
  /** When the first attempt began, and the current one (Infinity while waiting to retry). */
  opened: number;
  since: number;
  state: 'new' | 'ready' | 'failed';
  done: boolean;
  retry?: (why: string) => void;
}
export const sock = (t: Target, k: number): Sock => ({
  t,
  k,
  c: null,
  gen: 0,
  tries: 0,
  opened: 0,
  since: Infinity,
  state: 'new',
  done: false,
});

export interface Dial {
  /** Resume at once with these cursors (a reconnecting client knows them, as the SDK does); else after `ready`. */
  resumeAt?: () => Record<string, number>;
  /** The cursors to resume with, from `ready`'s heads (default: the heads). */
  cursors?: (heads: Record<string, number>) => Record<string, number>;
  frame?(f: ServerFrame, t: number): void;
  event?(d: string, t: number): void;
  ready(t: number): void;
  failed(why: string): void;
  /** Closed by the server after `resumed`. */
  lost?(code: number): void;
  canRetry?(): boolean;
}

let addr = 0;
/** Opens `s`; a socket that fails before `resumed` is tried again up to 3 times, as a real client reconnects. */
export function dial(job: JobOf<'connect' | 'fanout' | 'reconnect'>, s: Sock, h: Dial) {
  const gen = ++s.gen;
  s.since = nowMs();
  if (!s.tries) s.opened = s.since;
  const fail = (why: string) => {
    if (gen !== s.gen || s.state !== 'new' || s.done) return;
    s.gen++;
    closeSocket(s.c);
    if (s.tries < 3 && (h.canRetry?.() ?? true)) {
      s.tries++;
      warn(`${job.proto}: retrying a socket that failed before resume: ${why}`);
      s.since = Infinity;
      setTimeout(() => dial(job, s, h), 100 + Math.random() * 400);
    } else {
      s.state = 'failed';
      h.failed(why);
    }
  };
  s.retry = fail;
  const c = (s.c = openSocket(job.proto, s.t.url, s.t.token, job.addresses[addr++ % job.addresses.length], {
    onOpen: () => void (h.resumeAt && gen === s.gen && sendFrame(c, { type: 'resume', ref: 'r', convs: h.resumeAt() })),
    onFrame(f, t) {
      if (gen !== s.gen) return; // a frame of a dropped socket
      if (f.type === 'ready') {
        if (!h.resumeAt) sendFrame(c, { type: 'resume', ref: 'r', convs: h.cursors ? h.cursors(f.convs ?? {}) : (f.convs ?? {}) });
      } else if (f.type === 'resumed' && s.state === 'new') {
        s.state = 'ready';
        h.ready(t);
      } else h.frame?.(f, t);
    },
    onEvent: (d, t) => void (gen === s.gen && h.event?.(d, t)),
    onClose(code) {
      if (gen !== s.gen || s.done) return;
      if (s.state === 'ready') h.lost?.(code);
      else fail(`closed with ${code}, handshake state ${c.state}`);
    },
    onError: (msg) => fail(`${msg}, handshake state ${c.state}`),
  }));
}

/** Retries the sockets stuck in their handshake for `handshakeTimeoutMs`; returns the stop function. */
export function watchdog(job: JobOf<'connect' | 'fanout' | 'reconnect'>, socks: () => Iterable<Sock>) {
  const timer = setInterval(() => {
    const now = nowMs();
    for (const s of socks())
      if (s.state === 'new' && !s.done && now - s.since > job.handshakeTimeoutMs) s.retry?.(`no resume after ${job.handshakeTimeoutMs} ms`);
  }, 1000);
  return () => clearInterval(timer);
}

/** Gives up on the sockets not resumed after `timeoutMs`. */
export const giveUp = <S extends Sock>(socks: S[], h: (s: S) => Dial) => {
  for (const s of socks) if (s.state === 'new') (s.state = 'failed'), (s.done = true), h(s).failed('not resumed in time');
};

export function closeAll(socks: Iterable<Sock>) {
  for (const s of socks) {
    s.done = true;
    closeSocket(s.c);
  }
}
