/**
 * One generator process (forked by gen/runner.ts). It owns whole rooms (fanout, persist,
 * reconnect) or a range of sockets (connect), binds its sockets to its own 127.0.x.y source
 * addresses, records latencies into HdrHistograms and counts everything it checks; it reports
 * its own CPU (process.cpuUsage) and event-loop delay (monitorEventLoopDelay) over the measured
 * window, so the report can tell a slow server from a slow generator.
 *
 * Phases are coordinated by the runner: the worker posts a barrier (`ready`, `connected`) and
 * waits for `go` with the absolute time to start at, so every process sends, or drops its
 * sockets, at the same instant.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { ApiJob, ConnectJob, FanoutJob, FromGen, GenReport, Job, ReconnectJob, Target, ToGen } from './jobs.ts';
import { closeSocket, eventBody, eventSeq, makeBody, nowMs, openSocket, parseBody, sendFrame, type Conn, type Frame } from './proto.ts';
import { encodeHistogram, newHistogram, recordMs, type Histogram } from './stats.ts';

const post = (m: FromGen) => process.send!(m);
let logged = 0;
const warn = (line: string) => {
  if (logged++ < 10) post({ type: 'log', line });
};

const goWaiters = new Map<string, (at: number) => void>();
const goEarly = new Map<string, number>();
/** Posts a barrier and resolves with the `at` the runner sends once every process reached it. */
function barrier(name: string, info: Record<string, number> = {}): Promise<number> {
  post({ type: 'barrier', name, info });
  const early = goEarly.get(name);
  if (early !== undefined) return Promise.resolve(early);
  return new Promise((r) => goWaiters.set(name, r));
}
const sleepUntil = (at: number) => new Promise((r) => setTimeout(r, Math.max(0, at - nowMs())));

/**
 * Open loop at `rate`/s from `start` to `end`: the i-th call is due at start + i/rate whatever
 * happened before, and `f(due, now)` runs for it as soon as this process gets to it (late ones
 * included: the caller counts them). The process sleeps until the next one is due (no busy
 * 1 ms tick: that alone would cost more CPU than the deliveries at low rates).
 */
function openLoop(start: number, end: number, rate: number, f: (due: number, now: number) => void): Promise<void> {
  const interval = 1000 / rate;
  let i = 0;
  return new Promise<void>((resolve) => {
    const tick = () => {
      const now = nowMs();
      for (;;) {
        const due = start + i * interval;
        if (due >= end) return resolve();
        if (due > now) {
          setTimeout(tick, Math.max(0, Math.floor(due - now)));
          return;
        }
        f(due, now);
        i++;
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
  private result: { cpuS: number; s: number; eld: GenReport['eld'] } | null = null;
  constructor() {
    this.eld.enable();
  }
  start() {
    this.eld.reset();
    this.cpu0 = process.cpuUsage();
    this.t0 = nowMs();
    this.result = null;
  }
  stop() {
    if (this.result) return this.result;
    const c = process.cpuUsage(this.cpu0);
    const ns = (v: number) => Math.round(v / 1e4) / 100;
    this.result = {
      cpuS: (c.user + c.system) / 1e6,
      s: (nowMs() - this.t0) / 1000,
      eld: { p50: ns(this.eld.percentile(50)), p99: ns(this.eld.percentile(99)), max: ns(this.eld.max) },
    };
    return this.result;
  }
}

const jobCpu0 = process.cpuUsage();
function report(job: Job, clock: Clock, counters: Record<string, number>, hists: Record<string, Histogram>, timeline?: number[]): GenReport {
  const w = clock.stop();
  const total = process.cpuUsage(jobCpu0);
  const encoded: Record<string, string> = {};
  for (const [k, h] of Object.entries(hists)) encoded[k] = encodeHistogram(h);
  return { worker: job.worker, counters, hists: encoded, windowCpuS: w.cpuS, totalCpuS: (total.user + total.system) / 1e6, windowS: w.s, eld: w.eld, ...(timeline ? { timeline } : {}) };
}

/** Opens sockets in slices, yielding between them, so a storm of thousands does not stall this loop. */
async function inSlices<T>(items: T[], f: (x: T, i: number) => void, slice = 25) {
  for (let i = 0; i < items.length; i++) {
    f(items[i]!, i);
    if (i % slice === slice - 1) await new Promise((r) => setImmediate(r));
  }
}

// ---- a socket that completes the client handshake (ready → resume → resumed), with retries ----

interface Member {
  t: Target;
  k: number;
  c: Conn | null;
  gen: number;
  attempts: number;
  openedAt: number;
  attemptAt: number;
  ready: boolean;
  failed: boolean;
  done: boolean;
}

function member(t: Target, k: number): Member {
  return { t, k, c: null, gen: 0, attempts: 0, openedAt: 0, attemptAt: 0, ready: false, failed: false, done: false };
}

// ---- connect ---------------------------------------------------------------------------------

async function connect(job: ConnectJob & Job) {
  const clock = new Clock();
  const connectTime = newHistogram();
  const counters = { connect_ok: 0, connect_failed: 0, connect_retries: 0, connect_dropped_idle: 0 };
  const timeline: number[] = [];
  const socks = job.sockets.map((t, i) => member(t, i));
  let settled = 0;
  let allSettled: () => void = () => {};
  const settledP = new Promise<void>((r) => (allSettled = r));
  let t0 = 0;
  const settle = (s: Member, ok: boolean, why?: string) => {
    if (s.ready || s.failed) return;
    if (ok) {
      s.ready = true;
      counters.connect_ok++;
      const now = nowMs();
      recordMs(connectTime, now - s.openedAt);
      const bin = Math.floor((now - t0) / 100);
      while (timeline.length <= bin) timeline.push(0);
      timeline[bin]!++;
    } else {
      s.failed = true;
      counters.connect_failed++;
      warn(`${job.proto} connect failed: ${why}`);
    }
    if (++settled === socks.length) allSettled();
  };
  const open = (s: Member) => {
    const gen = ++s.gen;
    s.attemptAt = nowMs();
    const failedEarly = (why: string) => {
      if (gen !== s.gen || s.ready || s.failed) return;
      s.gen++;
      closeSocket(s.c);
      if (s.attempts < 3) {
        s.attempts++;
        counters.connect_retries++;
        warn(`${job.proto} retrying a socket that failed before resume: ${why}`);
        s.attemptAt = Infinity;
        setTimeout(() => open(s), 100 + Math.random() * 400);
      } else settle(s, false, why);
    };
    (s as Member & { retry?: (w: string) => void }).retry = failedEarly;
    s.c = openSocket(job.proto, s.t.url, s.t.token, job.addresses[s.k % job.addresses.length], {
      onFrame(f) {
        if (gen !== s.gen) return;
        if (f.type === 'ready') sendFrame(s.c!, { type: 'resume', ref: 'r', convs: f.convs ?? {} });
        else if (f.type === 'resumed') settle(s, true);
      },
      onEvent() {},
      onClose(code) {
        if (gen !== s.gen) return;
        if (!s.ready) failedEarly(`closed with ${code}`);
        else if (!s.done) {
          counters.connect_dropped_idle++;
          warn(`${job.proto} idle socket dropped: ${code}`);
        }
      },
      onError(msg) {
        if (gen === s.gen && !s.ready) failedEarly(msg);
      },
    });
  };
  const at = await barrier('ready');
  await sleepUntil(at);
  clock.start();
  t0 = nowMs();
  const watchdog = setInterval(() => {
    const now = nowMs();
    for (const s of socks) if (!s.ready && !s.failed && now - s.attemptAt > job.handshakeTimeoutMs) (s as Member & { retry?: (w: string) => void }).retry?.(`no resume after ${job.handshakeTimeoutMs} ms`);
    if (now - t0 > job.connectTimeoutS * 1000) for (const s of socks) settle(s, false, 'timed out');
  }, 1000);
  await inSlices(socks, (s) => {
    s.openedAt = nowMs();
    open(s);
  });
  if (!socks.length) allSettled();
  await settledP;
  clearInterval(watchdog);
  clock.stop();
  await barrier('connected', { ok: counters.connect_ok, failed: counters.connect_failed });
  for (const s of socks) {
    s.done = true;
    closeSocket(s.c);
  }
  post({ type: 'done', report: report(job, clock, counters, { connect_time: connectTime }, timeline) });
}

// ---- fanout / persist ------------------------------------------------------------------------

interface Room {
  id: string;
  members: (Member & { last: number; lastN: number[]; got: number })[];
  sent: number;
  acked: number;
  inflight: number;
  nextSender: number;
  nBySender: number[];
}

async function fanout(job: FanoutJob & Job) {
  const clock = new Clock();
  const latency = newHistogram();
  const lateness = newHistogram();
  const connectTime = newHistogram();
  const c = {
    fanout_sent: 0,
    fanout_acked: 0,
    fanout_delivered: 0,
    fanout_lost: 0,
    fanout_out_of_order: 0,
    fanout_duplicates: 0,
    fanout_send_errors: 0,
    fanout_unacked: 0,
    fanout_connect_failed: 0,
    fanout_unexpected_close: 0,
    fanout_connect_retries: 0,
    fanout_late_sends: 0,
    fanout_not_sent: 0,
  };
  const hasSeq = job.proto !== 'socketio';
  const rooms: Room[] = job.rooms.map((r) => ({
    id: r.id,
    members: r.members.map((t, k) => ({ ...member(t, k), last: 0, lastN: r.members.map(() => 0), got: 0 })),
    sent: 0,
    acked: 0,
    inflight: 0,
    nextSender: 0,
    nBySender: r.members.map(() => 0),
  }));
  const socks = rooms.flatMap((r) => r.members.map((m) => ({ m, r })));
  let phase: 'connect' | 'send' | 'drain' | 'done' = 'connect';
  let settled = 0;
  let allSettled: () => void = () => {};
  const settledP = new Promise<void>((r) => (allSettled = r));
  let sendEnd = Infinity;
  const body: number[] = [0, 0, 0];
  let addr = 0;

  const settle = (m: Member, ok: boolean, why?: string) => {
    if (m.ready || m.failed) return;
    if (ok) {
      m.ready = true;
      recordMs(connectTime, nowMs() - m.openedAt);
    } else {
      m.failed = true;
      c.fanout_connect_failed++;
      warn(`${job.proto}: socket failed before resume: ${why}`);
    }
    if (++settled === socks.length) allSettled();
  };

  const open = (m: Room['members'][number], room: Room) => {
    const gen = ++m.gen;
    m.attemptAt = nowMs();
    const failedEarly = (why: string) => {
      if (gen !== m.gen || m.ready || m.failed) return;
      m.gen++;
      closeSocket(m.c);
      if (m.attempts < 3 && phase === 'connect') {
        m.attempts++;
        c.fanout_connect_retries++;
        warn(`${job.proto}: retrying a socket that failed before resume: ${why}`);
        m.attemptAt = Infinity;
        setTimeout(() => open(m, room), 100 + Math.random() * 400);
      } else settle(m, false, why);
    };
    (m as Member & { retry?: (w: string) => void }).retry = failedEarly;
    m.c = openSocket(job.proto, m.t.url, m.t.token, job.addresses[addr++ % job.addresses.length], {
      onFrame(f: Frame) {
        if (gen !== m.gen) return;
        switch (f.type) {
          case 'ready': {
            const head = f.convs?.[room.id] ?? 0;
            m.last = head;
            sendFrame(m.c!, { type: 'resume', ref: 'r', convs: { [room.id]: head } });
            return;
          }
          case 'resumed':
            settle(m, true);
            return;
          case 'ack':
            room.acked++;
            room.inflight--;
            if (job.mode === 'max' && phase === 'send' && nowMs() < sendEnd) sendOne(room, nowMs());
            return;
          case 'error':
            if (f.ref) room.inflight--;
            c.fanout_send_errors++;
            warn(`error frame: ${JSON.stringify(f)}`);
            return;
          default:
            return; // pong, typing, read: not this test's business
        }
      },
      onEvent(d, t) {
        if (gen !== m.gen || !m.ready) return; // rooms are quiet until every socket is resumed
        parseBody(eventBody(d), body);
        recordMs(latency, t - body[0]! / 1000);
        m.got++;
        let dup = false;
        let bad = false;
        if (hasSeq) {
          const seq = eventSeq(d);
          if (seq <= m.last) dup = true;
          else if (seq !== m.last + 1) bad = true;
          if (seq > m.last) m.last = seq;
        } else {
          const prev = m.lastN[body[1]!]!;
          const n = body[2]!;
          if (n <= prev) dup = true;
          else if (n !== prev + 1) bad = true;
          if (n > prev) m.lastN[body[1]!] = n;
        }
        if (dup) c.fanout_duplicates++;
        else if (bad) c.fanout_out_of_order++;
      },
      onClose(code) {
        if (gen !== m.gen || m.done) return;
        if (m.ready) {
          c.fanout_unexpected_close++;
          warn(`socket closed after resume: code ${code}`);
        } else failedEarly(`closed with ${code}, handshake state ${m.c?.state}`);
      },
      onError(msg) {
        if (gen === m.gen && !m.ready && !m.done) failedEarly(`${msg}, handshake state ${m.c?.state}`);
      },
    });
  };

  /** Sends one message into `room`, stamped with `intendedMs` (the time it was due). */
  const sendOne = (room: Room, intendedMs: number) => {
    const n = room.members.length;
    let s: Room['members'][number] | null = null;
    for (let tries = 0; tries < n && !s; tries++) {
      const cand = room.members[job.senders === 'first' ? 0 : room.nextSender++ % n]!;
      if (cand.ready && !cand.c!.closed) s = cand;
    }
    if (!s) {
      c.fanout_not_sent++;
      return;
    }
    const seqN = ++room.nBySender[s.k]!;
    const ok = sendFrame(s.c!, { type: 'send', ref: 'm', conv: room.id, cid: `${job.runId}.${s.k}.${seqN}`, body: makeBody(Math.round(intendedMs * 1000), s.k, seqN, job.bodySize) });
    if (ok) {
      room.sent++;
      room.inflight++;
    } else {
      room.nBySender[s.k]!--;
      c.fanout_not_sent++;
    }
  };

  const connectStart = nowMs();
  const watchdog = setInterval(() => {
    const now = nowMs();
    for (const { m } of socks) if (!m.ready && !m.failed && now - m.attemptAt > job.handshakeTimeoutMs) (m as Member & { retry?: (w: string) => void }).retry?.(`no resume after ${job.handshakeTimeoutMs} ms`);
    if (now - connectStart > job.connectTimeoutS * 1000) for (const { m } of socks) settle(m, false, 'not resumed in time');
  }, 1000);
  await inSlices(socks, ({ m, r }) => {
    m.openedAt = nowMs();
    open(m, r);
  });
  if (!socks.length) allSettled();
  await settledP;
  clearInterval(watchdog);

  const at = await barrier('ready', { ready: socks.length - c.fanout_connect_failed, failed: c.fanout_connect_failed });
  await sleepUntil(at);
  clock.start();
  phase = 'send';
  sendEnd = at + job.durationS * 1000;
  // The measured window: the send window plus 500 ms for the last deliveries (as for the servers).
  const windowTimer = setTimeout(() => clock.stop(), sendEnd + 500 - nowMs());
  if (job.mode === 'max') {
    for (const room of rooms) for (let w = 0; w < job.window; w++) sendOne(room, nowMs());
    await sleepUntil(sendEnd);
  } else if (job.rate > 0 && rooms.length) {
    // Open loop: a send found due late is still sent, stamped with its due time, and counted.
    let rr = 0;
    await openLoop(at, sendEnd, job.rate, (due, now) => {
      const late = now - due;
      recordMs(lateness, late);
      if (late > 5) c.fanout_late_sends++;
      sendOne(rooms[rr++ % rooms.length]!, due);
    });
  }
  phase = 'drain';
  const drainStart = nowMs();
  await new Promise<void>((resolve) => {
    const check = () => {
      let pending = false;
      for (const room of rooms) {
        if (room.inflight > 0) pending = true;
        for (const m of room.members) if (m.ready && !m.c!.closed && m.got < room.acked) pending = true;
      }
      if (!pending || nowMs() - drainStart > job.drainS * 1000) return resolve();
      setTimeout(check, 100);
    };
    check();
  });
  clearTimeout(windowTimer);
  clock.stop();
  phase = 'done';
  for (const room of rooms) {
    c.fanout_sent += room.sent;
    c.fanout_acked += room.acked;
    if (room.inflight > 0) c.fanout_unacked += room.inflight;
    for (const m of room.members) {
      if (m.failed) continue;
      c.fanout_delivered += m.got;
      // Every acknowledged message of the room is due to every member socket.
      if (m.got < room.acked) c.fanout_lost += room.acked - m.got;
    }
  }
  for (const { m } of socks) {
    m.done = true;
    closeSocket(m.c);
  }
  post({ type: 'done', report: report(job, clock, c, { fanout_latency: latency, fanout_send_lateness: lateness, fanout_connect_time: connectTime }) });
}

// ---- reconnect storm -------------------------------------------------------------------------

async function reconnect(job: ReconnectJob & Job) {
  const clock = new Clock();
  const firstMessage = newHistogram();
  const resumeTime = newHistogram();
  // When this process sent the messages every member missed, after the drop: once it had
  // opened all its replacement sockets. No member's first message can come earlier, whatever
  // the server does: this much of the p99 to first message is the generator's own.
  const missedSent = newHistogram();
  const c = {
    reconnect_resumed: 0,
    reconnect_not_resumed: 0,
    reconnect_gaps: 0,
    reconnect_duplicates: 0,
    reconnect_lost: 0,
    reconnect_connect_failed: 0,
    reconnect_send_errors: 0,
    reconnect_retries: 0,
    reconnect_members: 0,
  };
  type M = Member & { room: R; last: number; resumed: boolean; firstAt: number; again: boolean };
  type R = { id: string; head: number; sent: number; acked: number; n: number; sender: { c: Conn | null; ready: boolean; failed: boolean } };
  let phase: 'connect' | 'warm' | 'resuming' | 'live' | 'done' = 'connect';
  let dropAt = 0;
  let addr = 0;
  const rooms: R[] = [];
  const members: M[] = [];
  for (const r of job.rooms) {
    const room: R = { id: r.id, head: 0, sent: 0, acked: 0, n: 0, sender: { c: null, ready: false, failed: false } };
    rooms.push(room);
    r.members.forEach((t, k) => members.push({ ...member(t, k), room, last: 0, resumed: false, firstAt: 0, again: false }));
  }
  c.reconnect_members = members.length;
  let initialSettled = 0;
  let resumedOrFailed = 0;

  const openSender = (room: R, t: Target) => {
    const s = room.sender;
    s.c = openSocket(job.proto, t.url, t.token, job.addresses[addr++ % job.addresses.length], {
      onFrame(f) {
        if (f.type === 'ready') sendFrame(s.c!, { type: 'resume', ref: 'r', convs: f.convs ?? {} });
        else if (f.type === 'resumed') {
          s.ready = true;
          initialSettled++;
        } else if (f.type === 'ack') {
          room.acked++;
          if (typeof f.seq === 'number' && f.seq > room.head) room.head = f.seq;
        } else if (f.type === 'error') {
          c.reconnect_send_errors++;
          warn(`sender error: ${JSON.stringify(f)}`);
        }
      },
      onEvent() {},
      onClose(code) {
        if (phase !== 'done') {
          if (!s.ready && !s.failed) initialSettled++;
          s.failed = true;
          warn(`sender socket closed: ${code}`);
        }
      },
      onError(msg) {
        warn(`sender socket error: ${msg}`);
      },
    });
  };

  const connect = (m: M, again: boolean) => {
    const gen = ++m.gen;
    m.again = again;
    m.attemptAt = nowMs();
    const resume = () => sendFrame(m.c!, { type: 'resume', ref: 'r', convs: { [m.room.id]: m.last } });
    const failedEarly = (why: string) => {
      if (gen !== m.gen || phase === 'done') return;
      if (again ? m.resumed : m.ready) return;
      m.gen++;
      closeSocket(m.c);
      if (m.attempts < 3) {
        m.attempts++;
        c.reconnect_retries++;
        warn(`retrying a member socket (${again ? 'after the drop' : 'initial'}): ${why}`);
        m.attemptAt = Infinity;
        setTimeout(() => connect(m, again), 100 + Math.random() * 400);
        return;
      }
      if (!again) {
        m.failed = true;
        initialSettled++;
      } else resumedOrFailed++;
      warn(`member socket gave up: ${why}`);
    };
    (m as Member & { retry?: (w: string) => void }).retry = failedEarly;
    m.c = openSocket(job.proto, m.t.url, m.t.token, job.addresses[addr++ % job.addresses.length], {
      // A reconnecting client knows its last seq: it resumes as soon as the socket opens, as the
      // SDK does, so the hub never starts live delivery before the resume.
      onOpen() {
        if (again && gen === m.gen) resume();
      },
      onFrame(f, t) {
        if (gen !== m.gen) return; // a frame of the dropped socket
        if (f.type === 'ready') {
          if (!again) {
            m.last = f.convs?.[m.room.id] ?? 0;
            resume();
          }
        } else if (f.type === 'resumed') {
          if (!again && !m.ready) {
            m.ready = true;
            initialSettled++;
          } else if (again && !m.resumed) {
            m.resumed = true;
            recordMs(resumeTime, t - dropAt);
            c.reconnect_resumed++;
            resumedOrFailed++;
          }
        } else if (f.type === 'gap') {
          c.reconnect_gaps++;
          warn(`gap frame: ${JSON.stringify(f)}`);
        }
      },
      onEvent(d, t) {
        if (gen !== m.gen) return;
        const seq = eventSeq(d);
        if (seq <= m.last) c.reconnect_duplicates++;
        else if (seq !== m.last + 1) {
          c.reconnect_gaps++;
          warn(`member skipped from ${m.last} to ${seq}`);
        }
        if (seq > m.last) m.last = seq;
        if (again && !m.firstAt) {
          m.firstAt = t;
          recordMs(firstMessage, t - dropAt);
        }
      },
      onClose(code) {
        if (gen === m.gen) failedEarly(`closed with ${code}`);
      },
      onError(msg) {
        if (gen === m.gen) failedEarly(msg);
      },
    });
  };

  const send = (room: R, count: number) => {
    for (let i = 0; i < count; i++) {
      room.n++;
      if (sendFrame(room.sender.c!, { type: 'send', ref: 's', conv: room.id, cid: `${job.runId}.${room.n}`, body: makeBody(Math.round(nowMs() * 1000), 0, room.n, 64) })) room.sent++;
    }
  };
  /** Resolves once `cond()` holds (checked every 20 ms, so an O(sockets) check stays cheap) or after timeoutMs. */
  const until = (cond: () => boolean, timeoutMs: number) =>
    new Promise<void>((resolve) => {
      const deadline = nowMs() + timeoutMs;
      const check = () => (cond() || nowMs() >= deadline ? resolve() : setTimeout(check, 20));
      check();
    });

  const connectStart = nowMs();
  const watchdog = setInterval(() => {
    const now = nowMs();
    for (const m of members) if (!(m.again ? m.resumed : m.ready) && !m.failed && now - m.attemptAt > job.handshakeTimeoutMs) (m as Member & { retry?: (w: string) => void }).retry?.(`no resume after ${job.handshakeTimeoutMs} ms`);
  }, 1000);
  job.rooms.forEach((r, i) => openSender(rooms[i]!, r.members[0]!));
  await inSlices(members, (m) => connect(m, false));
  await until(() => initialSettled >= members.length + rooms.length, Math.max(0, job.connectTimeoutS * 1000 - (nowMs() - connectStart)));
  for (const m of members) if (!m.ready && !m.failed) (m.failed = true), warn('member not ready in time');
  for (const r of rooms) if (!r.sender.ready) r.sender.failed = true;
  const failedInitial = members.filter((m) => m.failed).length;
  c.reconnect_connect_failed = failedInitial;

  const warmAt = await barrier('connected', { ready: members.length - failedInitial, failed: failedInitial });
  await sleepUntil(warmAt);
  phase = 'warm';
  for (const room of rooms) if (room.sender.ready) send(room, job.warm);
  dropAt = warmAt + 2000;
  await sleepUntil(dropAt);
  // The storm: every member socket of every process goes down at once and comes straight back.
  clock.start();
  phase = 'resuming';
  const alive = members.filter((m) => !m.failed);
  // Each member socket is closed and its replacement opened straight away, in turns of 25 so
  // that thousands of closes and opens do not stall this process's event loop.
  await inSlices(alive, (m) => {
    m.gen++; // frames still arriving on the old socket are ignored from here on
    m.attempts = 0;
    closeSocket(m.c);
    connect(m, true);
  });
  // Sent once every member socket is down (as the replacements come up): missed by every member.
  for (const room of rooms) if (room.sender.ready) send(room, job.missed);
  recordMs(missedSent, nowMs() - dropAt);
  await until(() => resumedOrFailed >= alive.length, job.resumeTimeoutS * 1000);
  phase = 'live';
  for (const room of rooms) if (room.sender.ready) send(room, job.live);
  await until(() => rooms.every((r) => r.acked >= r.sent) && alive.every((m) => !m.resumed || m.last >= m.room.head), 10_000);
  clearInterval(watchdog);
  clock.stop();
  phase = 'done';
  for (const m of alive) {
    if (!m.resumed) c.reconnect_not_resumed++;
    if (m.last < m.room.head) c.reconnect_lost += m.room.head - m.last;
    closeSocket(m.c);
  }
  for (const r of rooms) {
    closeSocket(r.sender.c);
    c.reconnect_send_errors += r.sent - r.acked;
    if (!r.sender.ready) c.reconnect_send_errors++;
  }
  post({ type: 'done', report: report(job, clock, c, { reconnect_first_message: firstMessage, reconnect_resume_time: resumeTime, reconnect_missed_sent: missedSent }) });
}

// ---- api: tRPC at constant arrival rates -------------------------------------------------------

async function api(job: ApiJob & Job) {
  const clock = new Clock();
  const hists = { login_duration: newHistogram(), history_duration: newHistogram() };
  const c = { login_ok: 0, login_failed: 0, login_dropped: 0, history_ok: 0, history_failed: 0, history_dropped: 0, api_late_starts: 0 };
  const at = await barrier('ready');
  await sleepUntil(at);
  clock.start();
  const end = at + job.durationS * 1000;
  const inFlight = { login: 0, history: 0 };
  const calls: Promise<void>[] = [];
  const call = async (kind: 'login' | 'history', i: number, due: number) => {
    inFlight[kind]++;
    try {
      const base = job.bases[i % job.bases.length]!;
      let ok = false;
      if (kind === 'login') {
        const res = await fetch(`${base}/trpc/auth.login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login: job.logins[i % job.logins.length], password: job.password }) });
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
      else {
        c[`${kind}_failed`]++;
        warn(`${kind} failed`);
      }
    } catch (err) {
      c[`${kind}_failed`]++;
      warn(`${kind} failed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      inFlight[kind]--;
    }
  };
  const schedulers = (['login', 'history'] as const)
    .filter((k) => (k === 'login' ? job.loginRate : job.historyRate) > 0)
    .map((kind) => {
      let i = 0;
      return openLoop(at, end, kind === 'login' ? job.loginRate : job.historyRate, (due, now) => {
        if (now - due > 5) c.api_late_starts++;
        // Open loop: a due call is made now, or dropped (counted) when too many are in flight.
        if (inFlight[kind] >= job.maxInFlight[kind]) c[`${kind}_dropped`]++;
        else calls.push(call(kind, i, due));
        i++;
      });
    });
  await Promise.all(schedulers);
  await Promise.race([Promise.all(calls), new Promise((r) => setTimeout(r, 30_000))]);
  clock.stop();
  post({ type: 'done', report: report(job, clock, c, hists) });
}

// ---- entry ---------------------------------------------------------------------------------

process.on('message', (m: ToGen) => {
  if (m.type === 'go') {
    const w = goWaiters.get(m.name);
    if (w) {
      goWaiters.delete(m.name);
      w(m.at);
    } else goEarly.set(m.name, m.at);
    return;
  }
  const job = m.job;
  const run = job.kind === 'connect' ? connect(job) : job.kind === 'fanout' ? fanout(job) : job.kind === 'reconnect' ? reconnect(job) : api(job);
  run.catch((err: unknown) => {
    post({ type: 'log', line: `generator ${job.worker} failed: ${err instanceof Error ? err.stack : String(err)}` });
    process.exit(1);
  });
});
process.on('disconnect', () => process.exit(0));
