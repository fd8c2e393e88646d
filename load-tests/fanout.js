// fanout: rooms of M members spread over the target replicas; senders at a constant arrival
// rate (or, with SEND_MODE=max, as fast as acks come back: the persistence test); end-to-end
// latency from the send time written in each message body to the moment k6 read the event
// off each receiving socket; and a check that every receiver got every acknowledged message
// exactly once, in order (per-room seq; per-sender order for the Socket.IO peer, which has
// no seq).
//
// Each VU owns whole rooms: it opens a socket for every member of its rooms (many sockets
// per VU), waits until all are resumed, sends from SEND_AT for DURATION seconds, waits for
// the deliveries to drain, checks, closes.
//
// Env: SEED, TARGETS, PROTO (see lib/), ROOM_SET (rooms | prooms: the rooms of 2 for the
// persistence test), ROOMS (how many seeded rooms to use), VUS, RATE
// (sends/s in total), DURATION (s), CONNECT_WINDOW (s before sends start), DRAIN (s),
// BODY_SIZE, SEND_MODE=rate|max, WINDOW (in-flight sends per room with max), RUN_ID (unique
// per run: client ids must not repeat across runs), LOGIN_RATE (adds auth.login at that rate
// during the sends), BASELINE_P99 (ms: with LOGIN_RATE, p99 must stay within 1.1× of it),
// LATENCY_TARGETS=off (peers), P50_MS/P99_MS/P999_MS, MIN_ACKED_PER_S (persistence target),
// SENDERS=rotate|first.
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';
import { arrivalScenario, login } from './lib/api.js';
import { closeSocket, eventBody, eventSeq, HAS_SEQ, openSocket, parseBody, makeBody, PROTO, sendFrame, targets } from './lib/proto.js';
import { num, prooms, rooms as fanoutRooms, str, TREND_STATS, users } from './lib/seed.js';

const rooms = str('ROOM_SET', 'rooms') === 'prooms' ? prooms : fanoutRooms;
const ROOMS = Math.min(num('ROOMS', rooms.length), rooms.length);
const VUS = Math.max(1, Math.min(num('VUS', 8), ROOMS));
const RATE = num('RATE', 2000);
const DURATION_S = num('DURATION', 30);
const CONNECT_S = num('CONNECT_WINDOW', 20);
const DRAIN_S = num('DRAIN', 10);
const BODY_SIZE = num('BODY_SIZE', 100);
const MODE = str('SEND_MODE', 'rate');
const WINDOW = num('WINDOW', 4);
// Who sends into a room: every member in turn (chat), or only its first member (the
// persistence test: one writer per room, so it measures store throughput, not lock waits).
const SENDERS = str('SENDERS', MODE === 'max' ? 'first' : 'rotate');
const RUN_ID = str('RUN_ID', String(Date.now()));
const LOGIN_RATE = num('LOGIN_RATE', 0);
const BASELINE_P99 = num('BASELINE_P99', 0);
const LATENCY_TARGETS = str('LATENCY_TARGETS', 'on') !== 'off';
const MIN_ACKED_PER_S = num('MIN_ACKED_PER_S', 0);
const TICK_MS = 5;
const HANDSHAKE_TIMEOUT_MS = num('HANDSHAKE_TIMEOUT_MS', 20_000);

const latency = new Trend('fanout_latency', true);
const ackLatency = new Trend('fanout_ack_latency', true);
const connectTime = new Trend('fanout_connect_time', true);
const sent = new Counter('fanout_sent');
const acked = new Counter('fanout_acked');
const delivered = new Counter('fanout_delivered');
const lost = new Counter('fanout_lost');
const outOfOrder = new Counter('fanout_out_of_order');
const duplicates = new Counter('fanout_duplicates');
const sendErrors = new Counter('fanout_send_errors');
const unacked = new Counter('fanout_unacked');
const connectFailed = new Counter('fanout_connect_failed');
const unexpectedClose = new Counter('fanout_unexpected_close');
const lateStart = new Trend('fanout_late_start', true);
const connectRetries = new Counter('fanout_connect_retries');

const thresholds = {
  fanout_lost: ['count==0'],
  fanout_out_of_order: ['count==0'],
  fanout_duplicates: ['count==0'],
  fanout_send_errors: ['count==0'],
  fanout_unacked: ['count==0'],
  fanout_connect_failed: ['count==0'],
  fanout_unexpected_close: ['count==0'],
  fanout_delivered: ['count>0'],
};
if (LATENCY_TARGETS) {
  const p99 = [`p(99)<=${num('P99_MS', 10)}`];
  if (BASELINE_P99 > 0) p99.push(`p(99)<=${Math.round(BASELINE_P99 * 1.1 * 100) / 100}`);
  thresholds.fanout_latency = [`p(50)<=${num('P50_MS', 2)}`, ...p99, `p(99.9)<=${num('P999_MS', 25)}`];
}
if (MIN_ACKED_PER_S > 0) thresholds.fanout_acked = [`count>=${Math.floor(MIN_ACKED_PER_S * DURATION_S)}`];

const scenarios = {
  fanout: {
    executor: 'per-vu-iterations',
    exec: 'fanout',
    vus: VUS,
    iterations: 1,
    maxDuration: `${CONNECT_S + DURATION_S + DRAIN_S + 60}s`,
  },
};
if (LOGIN_RATE > 0) {
  scenarios.login = arrivalScenario('login', LOGIN_RATE, DURATION_S, { perVU: 4, minVUs: 8, maxVUs: LOGIN_RATE, startTime: `${CONNECT_S}s` });
  thresholds.login_duration = [`p(99)<=${num('LOGIN_P99_MS', 50)}`];
  thresholds.login_failed = ['count==0'];
}

export const options = { scenarios, thresholds, summaryTrendStats: TREND_STATS, setupTimeout: '120s' };

export { login };

export function fanout() {
  const slot = exec.scenario.iterationInTest;
  const urls = targets();
  const plannedAt = exec.scenario.startTime + CONNECT_S * 1000;
  if (slot === 0) console.log(`BENCH_SEND_WINDOW start=${plannedAt} end=${plannedAt + DURATION_S * 1000} proto=${PROTO}`);
  // A VU whose sockets are not all resumed by then starts late but still sends DURATION s
  // (fanout_late_start says by how much; the bench flags the CPU window as misaligned).
  let sendEnd = plannedAt + DURATION_S * 1000;

  // This VU's rooms, and a socket per member.
  const mine = [];
  const socks = [];
  for (let r = slot; r < ROOMS; r += VUS) {
    const seeded = rooms[r];
    const room = { id: seeded.id, members: [], sent: 0, acked: 0, failed: 0, nextSender: 0, nBySender: [], inflight: 0 };
    mine.push(room);
    seeded.m.forEach((userIndex, k) => {
      const s = { room, k, url: urls[(r + k) % urls.length], token: users[userIndex].t, c: null, gen: 0, attempts: 0 };
      Object.assign(s, { last: 0, lastN: [], got: 0, ready: false, failed: false, done: false, openedAt: 0 });
      room.members.push(s);
      room.nBySender.push(0);
      socks.push(s);
    });
  }
  for (const room of mine) for (const s of room.members) for (let k = 0; k < room.members.length; k++) s.lastN.push(0);
  const myRate = (RATE * mine.length) / ROOMS; // every room gets the same rate
  let readyCount = 0;
  let failedCount = 0;
  let phase = 'connect';
  let credit = 0;
  let lastTick = 0;
  let rr = 0;
  let drainStart = 0;
  let lastHandshakeCheck = 0;
  let logged = 0;
  const warn = (msg) => {
    if (logged++ < 8) console.warn(`${PROTO}: ${msg}`);
  };
  for (const s of socks) open(s);

  /** (Re)opens a member socket. Frames of an earlier attempt are ignored (`gen`). */
  function open(s) {
    const gen = ++s.gen;
    s.openedAt = Date.now();
    s.c = openSocket(s.url, s.token, {
      onFrame(f, t) {
        if (gen !== s.gen) return;
        switch (f.type) {
          case 'ready': {
            s.c.state = 'ready';
            const head = (f.convs && f.convs[s.room.id]) || 0;
            s.last = head;
            sendFrame(s.c, { type: 'resume', ref: 'r', convs: { [s.room.id]: head } });
            return;
          }
          case 'resumed':
            if (!s.ready && !s.failed) {
              s.ready = true;
              readyCount++;
              connectTime.add(t - s.openedAt);
            }
            return;
          case 'ack': {
            const room = s.room;
            room.acked++;
            room.inflight--;
            ackLatency.add(t - Number(f.ref));
            if (MODE === 'max' && phase === 'send' && Date.now() < sendEnd) sendOne(room);
            return;
          }
          case 'error':
            if (f.ref) {
              s.room.failed++;
              s.room.inflight--;
            }
            sendErrors.add(1);
            warn(`error frame: ${JSON.stringify(f)}`);
            return;
          default:
            return; // pong, presence, typing, read: not this test's business
        }
      },
      onEvent(d, t) {
        if (gen !== s.gen || !s.ready) return; // rooms are quiet until every socket of this VU is resumed
        const body = parseBody(eventBody(d));
        latency.add(t - body[0]);
        s.got++;
        let bad = false;
        let dup = false;
        if (HAS_SEQ) {
          const seq = eventSeq(d);
          if (seq <= s.last) dup = true;
          else if (seq !== s.last + 1) bad = true;
          if (seq > s.last) s.last = seq;
        } else {
          const n = body[2];
          const prev = s.lastN[body[1]];
          if (n <= prev) dup = true;
          else if (n !== prev + 1) bad = true;
          if (n > prev) s.lastN[body[1]] = n;
        }
        if (dup) duplicates.add(1);
        else if (bad) outOfOrder.add(1);
      },
      onClose(code) {
        if (gen !== s.gen || s.done) return;
        if (s.ready) {
          unexpectedClose.add(1);
          warn(`socket closed after resume: code ${code}`);
        } else failedBeforeReady(s, `closed with ${code}, handshake state ${s.c.state}`);
      },
      onError(msg) {
        if (gen !== s.gen || s.done || s.ready) return;
        failedBeforeReady(s, `${msg}, handshake state ${s.c.state}`);
      },
    });
  }

  /** A socket that fails before `resumed` is retried like a real client would (counted). */
  function failedBeforeReady(s, why) {
    if (s.failed) return;
    s.gen++; // the other of close/error for this attempt, and anything late from it, is ignored
    if (s.attempts < 3 && phase === 'connect') {
      s.attempts++;
      connectRetries.add(1);
      warn(`retrying a socket that failed before resume: ${why}`);
      closeSocket(s.c);
      s.openedAt = Number.MAX_SAFE_INTEGER; // no handshake timeout until it is reopened
      setTimeout(() => open(s), 100 + Math.random() * 400);
      return;
    }
    s.failed = true;
    failedCount++;
    warn(`socket failed before resume: ${why}`);
  }

  function sendOne(room) {
    const n = room.members.length;
    let s = null;
    for (let tries = 0; tries < n && !s; tries++) {
      const cand = room.members[SENDERS === 'first' ? 0 : room.nextSender++ % n];
      if (cand.ready && !cand.c.closed) s = cand;
    }
    if (!s) return;
    const k = s.k;
    const seqN = ++room.nBySender[k];
    const sentAt = Date.now();
    const ok = sendFrame(s.c, {
      type: 'send',
      ref: String(sentAt),
      conv: room.id,
      cid: `${RUN_ID}.${k}.${seqN}`,
      body: makeBody(sentAt, k, seqN, BODY_SIZE),
    });
    if (ok) {
      room.sent++;
      room.inflight++;
    } else room.nBySender[k]--;
  }

  const timer = setInterval(() => {
    const now = Date.now();
    if (phase === 'connect') {
      // A handshake that hangs (no `ready`/`resumed` for HANDSHAKE_TIMEOUT) is retried, as a
      // client with a handshake timeout would; counted in fanout_connect_retries.
      if (now - lastHandshakeCheck > 1000) {
        lastHandshakeCheck = now;
        for (const s of socks) if (!s.ready && !s.failed && now - s.openedAt > HANDSHAKE_TIMEOUT_MS) failedBeforeReady(s, `no resume after ${HANDSHAKE_TIMEOUT_MS} ms, handshake state ${s.c.state}`);
      }
      if (readyCount + failedCount < socks.length) {
        if (now < plannedAt + 60_000) return;
        // Give up on the stragglers: they count as failed connections.
        for (const s of socks) {
          if (s.ready || s.failed) continue;
          s.failed = true;
          failedCount++;
          warn(`socket not resumed 60 s after the planned start: handshake state ${s.c.state}`);
        }
      }
      if (now < plannedAt) return;
      lateStart.add(now - plannedAt);
      if (now - plannedAt > 50) sendEnd = now + DURATION_S * 1000;
      phase = 'send';
      lastTick = now;
      if (MODE === 'max') for (const room of mine) for (let w = 0; w < WINDOW; w++) sendOne(room);
      return;
    }
    if (phase === 'send') {
      if (now >= sendEnd) {
        phase = 'drain';
        drainStart = now;
        return;
      }
      if (MODE === 'rate') {
        credit += ((now - lastTick) * myRate) / 1000;
        lastTick = now;
        while (credit >= 1) {
          credit -= 1;
          sendOne(mine[rr++ % mine.length]);
        }
      }
      return;
    }
    if (phase === 'drain') {
      let pending = false;
      for (const room of mine) {
        if (room.inflight > 0) pending = true;
        for (const s of room.members) if (s.ready && !s.c.closed && s.got < room.acked) pending = true;
      }
      if (pending && now - drainStart < DRAIN_S * 1000) return;
      finish();
    }
  }, TICK_MS);

  function finish() {
    phase = 'done';
    clearInterval(timer);
    let totalGot = 0;
    let totalLost = 0;
    for (const room of mine) {
      sent.add(room.sent);
      acked.add(room.acked);
      if (room.inflight > 0) unacked.add(room.inflight);
      for (const s of room.members) {
        if (s.failed) continue;
        totalGot += s.got;
        // Every acknowledged message of the room is due to every member socket.
        if (s.got < room.acked) totalLost += room.acked - s.got;
      }
    }
    delivered.add(totalGot);
    if (totalLost) lost.add(totalLost);
    if (failedCount) connectFailed.add(failedCount);
    for (const s of socks) {
      s.done = true;
      closeSocket(s.c);
    }
  }
}
