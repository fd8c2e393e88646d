/**
 * What a generator process runs (forked by runner.ts, entered at worker.ts): messages to the runner, its barriers,
 * open-loop timing, the clock of the measured window (CPU and event-loop delay), the final report, a socket that
 * completes the client handshake (ready → resume → resumed) with retries, and the socket jobs built on it: the connect
 * storm (or steps of idle sockets), fanout and persist, reconnect.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { type Conn, closeSocket, eventSeq, makeBody, nowMs, openSocket, parseBody, type ServerFrame, sendFrame } from './protocol.ts';
import { encodeHistogram, type FromGen, type Histogram, type Job, newHistogram, recordMs, type Target } from './runner.ts';

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
const until = (cond: () => boolean, ms: number) =>
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
    const [c, ms] = [process.cpuUsage(this.cpu0), (ns: number) => Math.round(ns / 1e4) / 100];
    const eld = { p50: ms(this.eld.percentile(50)), p99: ms(this.eld.percentile(99)), max: ms(this.eld.max) };
    return (this.result ??= { cpuS: (c.user + c.system) / 1e6, s: (nowMs() - this.t0) / 1000, eld });
  }
}
/** Counters, all 0. */
export const zeros = <K extends string>(...keys: K[]) => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
const jobCpu0 = process.cpuUsage();
export function finish(job: Job, clock: Clock, counters: Record<string, number>, hists: Record<string, Histogram>, timeline?: number[]) {
  const [w, total] = [clock.stop(), process.cpuUsage(jobCpu0)];
  const encoded = Object.fromEntries(Object.entries(hists).map(([k, h]) => [k, encodeHistogram(h)]));
  const report = {
    worker: job.worker,
    counters,
    hists: encoded,
    windowCpuS: w.cpuS,
    totalCpuS: (total.user + total.system) / 1e6,
    windowS: w.s,
    eld: w.eld,
    timeline,
  };
  post({ type: 'done', report });
}
/** Runs `f` over `items`, yielding every 25, so that opening thousands of sockets does not stall this loop. */
async function inSlices<T>(items: T[], f: (x: T) => void) {
  for (let i = 0; i < items.length; i++) {
    f(items[i]!);
    if (i % 25 === 24) await new Promise((r) => setImmediate(r));
  }
}

// ---- a socket that completes the client handshake (ready → resume → resumed), with retries -----------------------

/** `opened`: when the first attempt began; `since`: the current one (Infinity while waiting to retry). */
type Sock = {
  t: Target;
  k: number;
  c: Conn | null;
  gen: number;
  tries: number;
  opened: number;
  since: number;
  state: 'new' | 'ready' | 'failed';
} & {
  done: boolean;
  retry?: (why: string) => void;
};
const sock = (t: Target, k: number): Sock => ({ t, k, c: null, gen: 0, tries: 0, opened: 0, since: Infinity, state: 'new', done: false });
/**
 * `resumeAt`: resume at once with these cursors (a reconnecting client knows them, as the SDK does), else after `ready`
 * with `cursors(heads)` (default: the heads). `lost`: closed by the server after `resumed`.
 */
interface Dial {
  resumeAt?: () => Record<string, number>;
  cursors?: (heads: Record<string, number>) => Record<string, number>;
  frame?(f: ServerFrame, t: number): void;
  event?(d: string, t: number): void;
  ready(t: number): void;
  failed(why: string): void;
  lost?(code: number): void;
  canRetry?(): boolean;
}
type SocketJob = JobOf<'connect' | 'fanout' | 'reconnect'>;
let addr = 0;
/** Opens `s`; a socket that fails before `resumed` is tried again up to 3 times, as a real client reconnects. */
function dial(job: SocketJob, s: Sock, h: Dial) {
  const gen = ++s.gen;
  s.since = nowMs();
  if (!s.tries) s.opened = s.since;
  const fail = (s.retry = (why: string) => {
    if (gen !== s.gen || s.state !== 'new' || s.done) return;
    s.gen++;
    closeSocket(s.c);
    if (s.tries < 3 && (h.canRetry?.() ?? true)) {
      s.tries++;
      warn(`${job.proto}: retrying a socket that failed before resume: ${why}`);
      s.since = Infinity;
      setTimeout(() => dial(job, s, h), 100 + Math.random() * 400);
    } else (s.state = 'failed'), h.failed(why);
  });
  const c = (s.c = openSocket(job.proto, s.t.url, s.t.token, job.addresses[addr++ % job.addresses.length], {
    onOpen: () => void (h.resumeAt && gen === s.gen && sendFrame(c, { type: 'resume', ref: 'r', convs: h.resumeAt() })),
    onFrame(f, t) {
      if (gen !== s.gen) return; // a frame of a dropped socket
      if (f.type === 'ready') {
        if (!h.resumeAt) sendFrame(c, { type: 'resume', ref: 'r', convs: h.cursors ? h.cursors(f.convs ?? {}) : (f.convs ?? {}) });
      } else if (f.type === 'resumed' && s.state === 'new') (s.state = 'ready'), h.ready(t);
      else h.frame?.(f, t);
    },
    onEvent: (d, t) => void (gen === s.gen && h.event?.(d, t)),
    onClose: (code) =>
      void (gen === s.gen && !s.done && (s.state === 'ready' ? h.lost?.(code) : fail(`closed with ${code}, handshake state ${c.state}`))),
    onError: (msg) => fail(`${msg}, handshake state ${c.state}`),
  }));
}
/** Retries the sockets stuck in their handshake for `handshakeTimeoutMs`; returns the stop function. */
function watchdog(job: SocketJob, socks: () => Iterable<Sock>) {
  const timer = setInterval(() => {
    for (const s of socks())
      if (s.state === 'new' && !s.done && nowMs() - s.since > job.handshakeTimeoutMs)
        s.retry?.(`no resume after ${job.handshakeTimeoutMs} ms`);
  }, 1000);
  return () => clearInterval(timer);
}
/** Gives up on the sockets not resumed in time. */
const giveUp = <S extends Sock>(socks: S[], h: (s: S) => Dial) => {
  for (const s of socks) if (s.state === 'new') (s.state = 'failed'), (s.done = true), h(s).failed('not resumed in time');
};
const closeAll = (socks: Iterable<Sock>) => {
  for (const s of socks) (s.done = true), closeSocket(s.c);
};
const retries = (socks: Sock[]) => socks.reduce((a, s) => a + s.tries, 0);

// ---- connect: a storm, or steps of idle sockets ------------------------------------------------------------------

export async function connect(job: JobOf<'connect'>) {
  const [clock, connectTime, timeline] = [new Clock(), newHistogram(), [] as number[]];
  const c = { connect_ok: 0, connect_failed: 0, connect_retries: 0, connect_dropped_idle: 0 };
  const socks = job.sockets.map(sock);
  let [t0, next, pending, upTo] = [0, 0, 0, 0];
  const hooks = (s: Sock): Dial => ({
    ready(t) {
      c.connect_ok++, pending--;
      recordMs(connectTime, t - s.opened);
      const bin = Math.floor((t - t0) / 100);
      while (timeline.length <= bin) timeline.push(0);
      timeline[bin]!++;
      void pump();
    },
    failed: (why) => (c.connect_failed++, pending--, warn(`${job.proto} connect failed: ${why}`), void pump()),
    lost: (code) => (c.connect_dropped_idle++, warn(`${job.proto} idle socket dropped: ${code}`)),
  });
  const pump = async () => {
    for (let n = 0; pending < (job.inFlight ?? Infinity) && next < upTo; n++) {
      const s = socks[next++]!;
      pending++;
      dial(job, s, hooks(s));
      if (n % 25 === 24) await new Promise((r) => setImmediate(r));
    }
  };
  await sleepUntil(await barrier('ready'));
  clock.start();
  t0 = nowMs();
  const stop = watchdog(job, () => socks.slice(0, next));
  const steps = job.steps ?? [socks.length];
  for (let i = 0; i < steps.length; i++) {
    upTo = Math.min(steps[i]!, socks.length);
    await pump();
    const settled = () => next >= upTo && pending === 0;
    await until(settled, job.connectTimeoutS * 1000);
    if (!settled()) {
      // Out of time: the sockets in their handshake, and those never opened, count as failed.
      const opened = next;
      c.connect_failed += upTo - opened;
      next = upTo;
      giveUp(socks.slice(0, opened), hooks);
    }
    if (i === steps.length - 1) stop(), clock.stop();
    c.connect_retries = retries(socks);
    await sleepUntil(await barrier(`connected:${i}`, { ok: c.connect_ok - c.connect_dropped_idle, failed: c.connect_failed }));
  }
  closeAll(socks);
  finish(job, clock, c, { connect_time: connectTime }, timeline);
}

// ---- fanout and persist ------------------------------------------------------------------------------------------

/** `last`: the last seq seen; `lastN`: each sender's last n (the Socket.IO peer has no seq); `got`: events received. */
type Member = Sock & { last: number; lastN: number[]; got: number };
type Room = { id: string; members: Member[]; sent: number; acked: number; inflight: number; next: number; nBySender: number[] };
const FANOUT = ['sent', 'acked', 'delivered', 'lost', 'out_of_order', 'duplicates', 'send_errors', 'unacked', 'connect_failed'] as const;

export async function fanout(job: JobOf<'fanout'>) {
  const clock = new Clock();
  const [latency, lateness, connectTime, ackTime] = [newHistogram(), newHistogram(), newHistogram(), newHistogram()];
  /** When each send in flight was due, by cid: its ack's latency is timed from then, like a delivery's. */
  const dueOf = new Map<string, number>();
  const c = zeros(...[...FANOUT, 'unexpected_close', 'connect_retries', 'late_sends', 'not_sent'].map((k) => `fanout_${k}`));
  // Socket.IO has no shared seq, and the durable floor no order across replicas beyond Redis's (each replica publishes
  // once its own commit returns): their order is checked per sender.
  const hasSeq = job.proto !== 'socketio' && job.proto !== 'floor';
  const rooms: Room[] = job.rooms.map((r) => ({
    ...{ id: r.id, sent: 0, acked: 0, inflight: 0, next: 0, nBySender: r.members.map(() => 0) },
    members: r.members.map((t, k) => ({ ...sock(t, k), last: 0, lastN: r.members.map(() => 0), got: 0 })),
  }));
  const socks = rooms.flatMap((room) => room.members.map((m) => ({ m, room })));
  let [phase, settled, sendEnd] = ['connect' as 'connect' | 'send' | 'drain' | 'done', 0, Infinity];
  const body: number[] = [0, 0, 0];
  /** Sends one message into `room`, stamped with the time it was due. */
  const sendOne = (room: Room, dueMs: number) => {
    let s: Member | undefined;
    for (let i = 0; i < room.members.length && !s; i++) {
      const m = room.members[job.senders === 'first' ? 0 : room.next++ % room.members.length]!;
      if (m.state === 'ready' && !m.c!.closed) s = m;
    }
    if (!s) return void c.fanout_not_sent!++;
    const n = ++room.nBySender[s.k]!;
    const cid = `${job.runId}.${s.k}.${n}`;
    if (sendFrame(s.c!, { type: 'send', ref: 'm', conv: room.id, cid, body: makeBody(Math.round(dueMs * 1000), s.k, n, job.bodySize) }))
      return void (room.sent++, room.inflight++, dueOf.set(cid, dueMs));
    room.nBySender[s.k]!--;
    c.fanout_not_sent!++;
  };
  const hooks = ({ m, room }: (typeof socks)[number]): Dial => ({
    cursors: (heads) => ({ [room.id]: (m.last = heads[room.id] ?? 0) }),
    canRetry: () => phase === 'connect',
    ready: (t) => (recordMs(connectTime, t - m.opened), settled++),
    failed: (why) => (c.fanout_connect_failed!++, settled++, warn(`${job.proto}: socket failed before resume: ${why}`)),
    lost: (code) => (c.fanout_unexpected_close!++, warn(`socket closed after resume: code ${code}`)),
    frame(f, t) {
      if (f.type === 'ack') {
        const due = dueOf.get(f.cid);
        if (due !== undefined) recordMs(ackTime, t - due), dueOf.delete(f.cid);
        room.acked++, room.inflight--;
        if (job.mode === 'max' && phase === 'send' && nowMs() < sendEnd) sendOne(room, nowMs());
      } else if (f.type === 'error') {
        if (f.ref) room.inflight--;
        c.fanout_send_errors!++;
        warn(`error frame: ${JSON.stringify(f)}`);
      }
    },
    event(d, t) {
      if (m.state !== 'ready') return; // rooms are quiet until every socket resumed
      parseBody(d, body);
      recordMs(latency, t - body[0]! / 1000);
      m.got++;
      const [seq, prev] = hasSeq ? [eventSeq(d), m.last] : [body[2]!, m.lastN[body[1]!]!];
      if (seq <= prev) return void c.fanout_duplicates!++;
      if (seq !== prev + 1) c.fanout_out_of_order!++;
      if (hasSeq) m.last = seq;
      else m.lastN[body[1]!] = seq;
    },
  });

  const stop = watchdog(job, () => socks.map((x) => x.m));
  await inSlices(socks, (x) => dial(job, x.m, hooks(x)));
  await until(() => settled === socks.length, job.connectTimeoutS * 1000);
  for (const x of socks) if (x.m.state === 'new') giveUp([x.m], () => hooks(x));
  stop();
  c.fanout_connect_retries = retries(socks.map((x) => x.m));
  const failed = c.fanout_connect_failed!;
  const at = await barrier('ready', { ready: socks.length - failed, failed });
  await sleepUntil(at);
  clock.start();
  phase = 'send';
  sendEnd = at + job.durationS * 1000;
  // The measured window: the send window plus 500 ms for the last deliveries, as for the servers.
  const windowTimer = setTimeout(() => clock.stop(), sendEnd + 500 - nowMs());
  if (job.mode === 'max') {
    for (const room of rooms) for (let w = 0; w < job.window; w++) sendOne(room, nowMs());
    await sleepUntil(sendEnd);
  } else if (job.rate > 0 && rooms.length) {
    let rr = 0;
    await openLoop(at, sendEnd, job.rate, (due, now) => {
      recordMs(lateness, now - due);
      if (now - due > 5) c.fanout_late_sends!++;
      sendOne(rooms[rr++ % rooms.length]!, due);
    });
  }
  phase = 'drain';
  const pending = () => rooms.some((r) => r.inflight > 0 || r.members.some((m) => m.state === 'ready' && !m.c!.closed && m.got < r.acked));
  await until(() => !pending(), job.drainS * 1000);
  clearTimeout(windowTimer);
  clock.stop();
  phase = 'done';
  for (const room of rooms) {
    c.fanout_sent! += room.sent;
    c.fanout_acked! += room.acked;
    c.fanout_unacked! += Math.max(0, room.inflight);
    for (const m of room.members.filter((x) => x.state !== 'failed')) {
      c.fanout_delivered! += m.got;
      c.fanout_lost! += Math.max(0, room.acked - m.got); // every acknowledged message is due to every member
    }
  }
  closeAll(socks.map((x) => x.m));
  finish(job, clock, c, { fanout_latency: latency, fanout_send_lateness: lateness, fanout_connect_time: connectTime, fanout_ack: ackTime });
}

// ---- reconnect storm ---------------------------------------------------------------------------------------------

export async function reconnect(job: JobOf<'reconnect'>) {
  const clock = new Clock();
  // missedSent: when this process sent the messages every member missed, once it had opened all its replacement
  // sockets. No first message can come earlier, whatever the server does: that much of it is the generator's own.
  const [firstMessage, resumeTime, missedSent] = [newHistogram(), newHistogram(), newHistogram()];
  const keys = ['resumed', 'not_resumed', 'gaps', 'duplicates', 'lost', 'connect_failed', 'send_errors', 'retries', 'members'] as const;
  const c = zeros(...keys.map((k) => `reconnect_${k}` as const));
  type R = { id: string; head: number; sent: number; acked: number; n: number; sender: Sock };
  type M = Sock & { room: R; last: number; again: boolean; firstAt: number };
  let [dropAt, settled] = [0, 0];
  const rooms: R[] = job.rooms.map((r) => ({ id: r.id, head: 0, sent: 0, acked: 0, n: 0, sender: sock(r.members[0]!, 0) }));
  const members: M[] = job.rooms.flatMap((r, i) =>
    r.members.map((t, k) => ({ ...sock(t, k), room: rooms[i]!, last: 0, again: false, firstAt: 0 })),
  );
  c.reconnect_members = members.length;
  const senderHooks = (room: R): Dial => ({
    ready: () => settled++,
    failed: (why) => (settled++, warn(`sender socket failed: ${why}`)),
    lost: (code) => warn(`sender socket closed: ${code}`),
    frame(f) {
      if (f.type === 'ack') room.acked++, (room.head = Math.max(room.head, f.seq));
      else if (f.type === 'error') c.reconnect_send_errors++, warn(`sender error: ${JSON.stringify(f)}`);
    },
  });
  const hooks = (m: M): Dial => ({
    ...(m.again
      ? { resumeAt: () => ({ [m.room.id]: m.last }) }
      : { cursors: (heads) => ({ [m.room.id]: (m.last = heads[m.room.id] ?? 0) }) }),
    ready: (t) => void (settled++, m.again && (c.reconnect_resumed++, recordMs(resumeTime, t - dropAt))),
    failed: (why) => (settled++, warn(`member socket gave up: ${why}`)),
    frame: (f) => void (f.type === 'gap' && (c.reconnect_gaps++, warn(`gap frame: ${JSON.stringify(f)}`))),
    event(d, t) {
      const seq = eventSeq(d);
      if (seq <= m.last) c.reconnect_duplicates++;
      else if (seq !== m.last + 1) c.reconnect_gaps++, warn(`member skipped from ${m.last} to ${seq}`);
      m.last = Math.max(m.last, seq);
      if (m.again && !m.firstAt) recordMs(firstMessage, (m.firstAt = t) - dropAt);
    },
  });
  const send = (room: R, count: number) => {
    for (let i = 0; i < count && room.sender.state === 'ready'; i++) {
      const body = makeBody(Math.round(nowMs() * 1000), 0, ++room.n, 64);
      if (sendFrame(room.sender.c!, { type: 'send', ref: 's', conv: room.id, cid: `${job.runId}.${room.n}`, body })) room.sent++;
    }
  };

  const all = () => [...members, ...rooms.map((r) => r.sender)];
  const stop = watchdog(job, all);
  rooms.forEach((r) => dial(job, r.sender, senderHooks(r)));
  await inSlices(members, (m) => dial(job, m, hooks(m)));
  await until(() => settled >= members.length + rooms.length, job.connectTimeoutS * 1000);
  giveUp(members, hooks);
  for (const r of rooms) if (r.sender.state === 'new') r.sender.state = 'failed';
  c.reconnect_connect_failed = members.filter((m) => m.state === 'failed').length;
  const warmAt = await barrier('connected', { ready: members.length - c.reconnect_connect_failed, failed: c.reconnect_connect_failed });
  await sleepUntil(warmAt);
  for (const room of rooms) send(room, job.warm);
  await sleepUntil((dropAt = warmAt + 2000));
  // The storm: every member socket of every process goes down at once, and its replacement is opened straight away.
  clock.start();
  const alive = members.filter((m) => m.state === 'ready');
  c.reconnect_retries = retries(members);
  settled = 0;
  await inSlices(alive, (m) => {
    m.gen++; // frames still arriving on the old socket are ignored from here on
    closeSocket(m.c);
    Object.assign(m, { tries: 0, state: 'new', again: true });
    dial(job, m, hooks(m));
  });
  // Sent once every member socket is down (as the replacements come up): missed by every member.
  for (const room of rooms) send(room, job.missed);
  recordMs(missedSent, nowMs() - dropAt);
  await until(() => settled >= alive.length, job.resumeTimeoutS * 1000);
  for (const room of rooms) send(room, job.live);
  await until(() => rooms.every((r) => r.acked >= r.sent) && alive.every((m) => m.state !== 'ready' || m.last >= m.room.head), 10_000);
  stop();
  clock.stop();
  for (const m of alive) {
    c.reconnect_retries += m.tries;
    if (m.state !== 'ready') c.reconnect_not_resumed++;
    c.reconnect_lost += Math.max(0, m.room.head - m.last);
  }
  for (const r of rooms) c.reconnect_send_errors += r.sent - r.acked + (r.sender.state === 'ready' ? 0 : 1);
  closeAll(all());
  finish(job, clock, c, { reconnect_first_message: firstMessage, reconnect_resume_time: resumeTime, reconnect_missed_sent: missedSent });
}
