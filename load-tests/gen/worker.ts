/**
 * One generator process (forked by runner.ts). It owns whole rooms (fanout, reconnect), a share of sockets (connect) or
 * the store's writers, binds its sockets to its own 127.0.x.y source addresses, records latencies into HdrHistograms
 * and counts everything it checks. It reports its own CPU and event-loop delay over the measured window, so the report
 * can tell a slow server from a slow generator. Phases are the runner's: the process posts a barrier and waits for the
 * absolute time to go at, so every process sends, or drops its sockets, at the same instant.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { closeSocket, eventSeq, makeBody, nowMs, openSocket, parseBody, sendFrame, type Conn, type ServerFrame } from './protocol.ts';
import { encodeHistogram, newHistogram, recordMs, type FromGen, type Histogram, type Job, type Target, type ToGen } from './runner.ts';

type JobOf<K extends Job['kind']> = Extract<Job, { kind: K }>;
const post = (m: FromGen) => process.send!(m);
let logged = 0;
const warn = (line: string) => void (logged++ < 10 && post({ type: 'log', line }));

const goes = new Map<string, (at: number) => void>();
const early = new Map<string, number>();
/** Posts a barrier; resolves with the time the runner releases every process at. */
function barrier(name: string, info: Record<string, number> = {}): Promise<number> {
  post({ type: 'barrier', name, info });
  const at = early.get(name);
  return at !== undefined ? Promise.resolve(at) : new Promise((r) => goes.set(name, r));
}
const sleepUntil = (at: number) => new Promise((r) => setTimeout(r, Math.max(0, at - nowMs())));
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
function openLoop(start: number, end: number, rate: number, f: (due: number, now: number) => void): Promise<void> {
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
class Clock {
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
const zeros = <K extends string>(...keys: K[]) => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;

const jobCpu0 = process.cpuUsage();
function finish(job: Job, clock: Clock, counters: Record<string, number>, hists: Record<string, Histogram>, timeline?: number[]) {
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
async function inSlices<T>(items: T[], f: (x: T) => void) {
  for (let i = 0; i < items.length; i++) {
    f(items[i]!);
    if (i % 25 === 24) await new Promise((r) => setImmediate(r));
  }
}

// ---- a socket that completes the client handshake (ready → resume → resumed), with retries -----------------------

interface Sock {
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
const sock = (t: Target, k: number): Sock => ({ t, k, c: null, gen: 0, tries: 0, opened: 0, since: Infinity, state: 'new', done: false });

interface Dial {
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
function dial(job: JobOf<'connect' | 'fanout' | 'reconnect'>, s: Sock, h: Dial) {
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
function watchdog(job: JobOf<'connect' | 'fanout' | 'reconnect'>, socks: () => Iterable<Sock>) {
  const timer = setInterval(() => {
    const now = nowMs();
    for (const s of socks())
      if (s.state === 'new' && !s.done && now - s.since > job.handshakeTimeoutMs) s.retry?.(`no resume after ${job.handshakeTimeoutMs} ms`);
  }, 1000);
  return () => clearInterval(timer);
}

/** Gives up on the sockets not resumed after `timeoutMs`. */
const giveUp = <S extends Sock>(socks: S[], h: (s: S) => Dial) => {
  for (const s of socks) if (s.state === 'new') (s.state = 'failed'), (s.done = true), h(s).failed('not resumed in time');
};

function closeAll(socks: Iterable<Sock>) {
  for (const s of socks) {
    s.done = true;
    closeSocket(s.c);
  }
}

// ---- connect: a storm, or steps of idle sockets ------------------------------------------------------------------

async function connect(job: JobOf<'connect'>) {
  const clock = new Clock();
  const connectTime = newHistogram();
  const c = { connect_ok: 0, connect_failed: 0, connect_retries: 0, connect_dropped_idle: 0 };
  const timeline: number[] = [];
  const socks = job.sockets.map(sock);
  let t0 = 0;
  let next = 0;
  let pending = 0;
  const hooks = (s: Sock): Dial => ({
    ready(t) {
      c.connect_ok++;
      pending--;
      recordMs(connectTime, t - s.opened);
      const bin = Math.floor((t - t0) / 100);
      while (timeline.length <= bin) timeline.push(0);
      timeline[bin]!++;
      void pump();
    },
    failed(why) {
      c.connect_failed++;
      pending--;
      warn(`${job.proto} connect failed: ${why}`);
      void pump();
    },
    lost: (code) => (c.connect_dropped_idle++, warn(`${job.proto} idle socket dropped: ${code}`)),
  });
  let upTo = 0;
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
    if (i === steps.length - 1) {
      stop();
      clock.stop();
    }
    c.connect_retries = socks.reduce((a, s) => a + s.tries, 0);
    await sleepUntil(await barrier(`connected:${i}`, { ok: c.connect_ok - c.connect_dropped_idle, failed: c.connect_failed }));
  }
  closeAll(socks);
  finish(job, clock, c, { connect_time: connectTime }, timeline);
}

// ---- fanout and persist ------------------------------------------------------------------------------------------

/** `last`: the last seq seen; `lastN`: each sender's last n (the Socket.IO peer has no seq); `got`: events received. */
type Member = Sock & { last: number; lastN: number[]; got: number };
type Room = { id: string; members: Member[]; sent: number; acked: number; inflight: number; next: number; nBySender: number[] };

async function fanout(job: JobOf<'fanout'>) {
  const clock = new Clock();
  const [latency, lateness, connectTime, ackTime] = [newHistogram(), newHistogram(), newHistogram(), newHistogram()];
  /** When each send in flight was due, by cid: its ack's latency is timed from then, like a delivery's. */
  const dueOf = new Map<string, number>();
  const c = zeros(
    'fanout_sent',
    'fanout_acked',
    'fanout_delivered',
    'fanout_lost',
    'fanout_out_of_order',
    'fanout_duplicates',
    'fanout_send_errors',
    'fanout_unacked',
    'fanout_connect_failed',
    'fanout_unexpected_close',
    'fanout_connect_retries',
    'fanout_late_sends',
    'fanout_not_sent',
  );
  // Socket.IO has no shared seq, and the durable floor no order across replicas beyond Redis's (each replica publishes
  // once its own commit returns): their order is checked per sender.
  const hasSeq = job.proto !== 'socketio' && job.proto !== 'floor';
  const rooms: Room[] = job.rooms.map((r) => ({
    id: r.id,
    members: r.members.map((t, k) => ({ ...sock(t, k), last: 0, lastN: r.members.map(() => 0), got: 0 })),
    ...{ sent: 0, acked: 0, inflight: 0, next: 0, nBySender: r.members.map(() => 0) },
  }));
  const socks = rooms.flatMap((room) => room.members.map((m) => ({ m, room })));
  let phase: 'connect' | 'send' | 'drain' | 'done' = 'connect';
  let settled = 0;
  let sendEnd = Infinity;
  const body: number[] = [0, 0, 0];

  /** Sends one message into `room`, stamped with the time it was due. */
  const sendOne = (room: Room, dueMs: number) => {
    let s: Member | undefined;
    for (let i = 0; i < room.members.length && !s; i++) {
      const m = room.members[job.senders === 'first' ? 0 : room.next++ % room.members.length]!;
      if (m.state === 'ready' && !m.c!.closed) s = m;
    }
    if (!s) return void c.fanout_not_sent++;
    const n = ++room.nBySender[s.k]!;
    const body = makeBody(Math.round(dueMs * 1000), s.k, n, job.bodySize);
    const cid = `${job.runId}.${s.k}.${n}`;
    if (sendFrame(s.c!, { type: 'send', ref: 'm', conv: room.id, cid, body }))
      return void (room.sent++, room.inflight++, dueOf.set(cid, dueMs));
    room.nBySender[s.k]!--;
    c.fanout_not_sent++;
  };
  const hooks = ({ m, room }: (typeof socks)[number]): Dial => ({
    cursors: (heads) => ({ [room.id]: (m.last = heads[room.id] ?? 0) }),
    canRetry: () => phase === 'connect',
    ready: (t) => (recordMs(connectTime, t - m.opened), settled++),
    failed: (why) => (c.fanout_connect_failed++, settled++, warn(`${job.proto}: socket failed before resume: ${why}`)),
    lost: (code) => (c.fanout_unexpected_close++, warn(`socket closed after resume: code ${code}`)),
    frame(f, t) {
      if (f.type === 'ack') {
        const due = dueOf.get(f.cid);
        if (due !== undefined) recordMs(ackTime, t - due), dueOf.delete(f.cid);
        room.acked++;
        room.inflight--;
        if (job.mode === 'max' && phase === 'send' && nowMs() < sendEnd) sendOne(room, nowMs());
      } else if (f.type === 'error') {
        if (f.ref) room.inflight--;
        c.fanout_send_errors++;
        warn(`error frame: ${JSON.stringify(f)}`);
      }
    },
    event(d, t) {
      if (m.state !== 'ready') return; // rooms are quiet until every socket resumed
      parseBody(d, body);
      recordMs(latency, t - body[0]! / 1000);
      m.got++;
      const [seq, prev] = hasSeq ? [eventSeq(d), m.last] : [body[2]!, m.lastN[body[1]!]!];
      if (seq <= prev) c.fanout_duplicates++;
      else if (seq !== prev + 1) c.fanout_out_of_order++;
      if (seq <= prev) return;
      if (hasSeq) m.last = seq;
      else m.lastN[body[1]!] = seq;
    },
  });

  const stop = watchdog(job, () => socks.map((x) => x.m));
  await inSlices(socks, (x) => dial(job, x.m, hooks(x)));
  await until(() => settled === socks.length, job.connectTimeoutS * 1000);
  for (const x of socks) if (x.m.state === 'new') giveUp([x.m], () => hooks(x));
  stop();
  c.fanout_connect_retries = socks.reduce((a, x) => a + x.m.tries, 0);

  const at = await barrier('ready', { ready: socks.length - c.fanout_connect_failed, failed: c.fanout_connect_failed });
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
      if (now - due > 5) c.fanout_late_sends++;
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
    c.fanout_sent += room.sent;
    c.fanout_acked += room.acked;
    c.fanout_unacked += Math.max(0, room.inflight);
    for (const m of room.members.filter((x) => x.state !== 'failed')) {
      c.fanout_delivered += m.got;
      c.fanout_lost += Math.max(0, room.acked - m.got); // every acknowledged message is due to every member
    }
  }
  closeAll(socks.map((x) => x.m));
  finish(job, clock, c, { fanout_latency: latency, fanout_send_lateness: lateness, fanout_connect_time: connectTime, fanout_ack: ackTime });
}

// ---- reconnect storm ---------------------------------------------------------------------------------------------

async function reconnect(job: JobOf<'reconnect'>) {
  const clock = new Clock();
  const [firstMessage, resumeTime] = [newHistogram(), newHistogram()];
  // When this process sent the messages every member missed: once it had opened all its replacement sockets. No first
  // message can come earlier, whatever the server does: this much of the time to first message is the generator's own.
  const missedSent = newHistogram();
  const c = zeros(
    'reconnect_resumed',
    'reconnect_not_resumed',
    'reconnect_gaps',
    'reconnect_duplicates',
    'reconnect_lost',
    'reconnect_connect_failed',
    'reconnect_send_errors',
    'reconnect_retries',
    'reconnect_members',
  );
  type R = { id: string; head: number; sent: number; acked: number; n: number; sender: Sock };
  type M = Sock & { room: R; last: number; again: boolean; firstAt: number };
  let dropAt = 0;
  let settled = 0;
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
    ready(t) {
      settled++;
      if (m.again) c.reconnect_resumed++, recordMs(resumeTime, t - dropAt);
    },
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
  dropAt = warmAt + 2000;
  await sleepUntil(dropAt);
  // The storm: every member socket of every process goes down at once, and its replacement is opened straight away.
  clock.start();
  const alive = members.filter((m) => m.state === 'ready');
  c.reconnect_retries = members.reduce((a, m) => a + m.tries, 0);
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
  if (m.type === 'go') {
    const w = goes.get(m.name);
    goes.delete(m.name);
    return w ? w(m.at) : void early.set(m.name, m.at);
  }
  const job = m.job;
  const run = { connect, fanout, reconnect, api, store }[job.kind] as (j: Job) => Promise<void>;
  run(job).catch((err: unknown) => {
    post({ type: 'log', line: `generator ${job.worker} failed: ${err instanceof Error ? err.stack : String(err)}` });
    process.exit(1);
  });
});
process.on('disconnect', () => process.exit(0));
