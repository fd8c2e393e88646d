/** The socket jobs of a generator process: the connect storm (or steps of idle sockets), fanout and persist, reconnect. */
import {
  barrier,
  Clock,
  closeAll,
  type Dial,
  dial,
  finish,
  giveUp,
  inSlices,
  type JobOf,
  openLoop,
  sleepUntil,
  type Sock,
  sock,
  until,
  warn,
  watchdog,
  zeros,
} from './job-kit.ts';
import { closeSocket, eventSeq, makeBody, nowMs, parseBody, sendFrame } from './protocol.ts';
import { newHistogram, recordMs } from './runner.ts';

// ---- connect: a storm, or steps of idle sockets ------------------------------------------------------------------

export async function connect(job: JobOf<'connect'>) {
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

export async function fanout(job: JobOf<'fanout'>) {
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
  finish(job, clock, c, {
    fanout_latency: latency,
    fanout_send_lateness: lateness,
    fanout_connect_time: connectTime,
    fanout_ack: ackTime,
  });
}

// ---- reconnect storm ---------------------------------------------------------------------------------------------

export async function reconnect(job: JobOf<'reconnect'>) {
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
