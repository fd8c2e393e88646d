// reconnect: a reconnect storm with resume (Hubbub only: the peers have no resume).
//
// Every member of ROOMS rooms connects (plus one extra sender socket per room, which stays
// up). At CONNECT_WINDOW each room gets WARM messages; at the same instant in every VU all
// member sockets are closed by the client and reopened at once, while each room's sender
// sends MISSED more messages. Each new socket sends `resume` with the last seq it saw; it must
// receive exactly the events after it, in order, then `resumed`; then each room gets LIVE
// messages, and at the end every member must stand at the room's last seq with nothing lost,
// duplicated or skipped. `reconnect_first_message` is the time from the drop to the first
// event on the new socket (the "time to first message").
//
// Env: SEED, TARGETS, ROOMS, VUS, CONNECT_WINDOW (s), WARM, MISSED, LIVE (messages per room),
// RESUME_TIMEOUT (s), TTFM_P99_MS, RUN_ID.
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';
import { closeSocket, eventSeq, makeBody, openSocket, PROTO, sendFrame, targets } from './lib/proto.js';
import { num, rooms, str, TREND_STATS, users } from './lib/seed.js';

if (PROTO !== 'hubbub') throw new Error('reconnect.js drives Hubbub only (PROTO=hubbub)');

const ROOMS = Math.min(num('ROOMS', rooms.length), rooms.length);
const VUS = Math.max(1, Math.min(num('VUS', 8), ROOMS));
const CONNECT_S = num('CONNECT_WINDOW', 20);
const WARM = num('WARM', 2);
const MISSED = Math.max(1, num('MISSED', 3));
const LIVE = num('LIVE', 1);
const RESUME_TIMEOUT_S = num('RESUME_TIMEOUT', 30);
const RUN_ID = str('RUN_ID', String(Date.now()));
const MEMBERS = (() => {
  let n = 0;
  for (let r = 0; r < ROOMS; r++) n += rooms[r].m.length;
  return n;
})();

const firstMessage = new Trend('reconnect_first_message', true);
const resumeTime = new Trend('reconnect_resume_time', true);
const resumedCount = new Counter('reconnect_resumed');
const notResumed = new Counter('reconnect_not_resumed');
const gaps = new Counter('reconnect_gaps');
const duplicates = new Counter('reconnect_duplicates');
const lost = new Counter('reconnect_lost');
const connectFailed = new Counter('reconnect_connect_failed');
const sendErrors = new Counter('reconnect_send_errors');
const retries = new Counter('reconnect_retries');

export const options = {
  scenarios: {
    storm: {
      executor: 'per-vu-iterations',
      exec: 'storm',
      vus: VUS,
      iterations: 1,
      maxDuration: `${CONNECT_S + RESUME_TIMEOUT_S + 90}s`,
    },
  },
  thresholds: {
    reconnect_resumed: [`count==${MEMBERS}`],
    reconnect_not_resumed: ['count==0'],
    reconnect_gaps: ['count==0'],
    reconnect_duplicates: ['count==0'],
    reconnect_lost: ['count==0'],
    reconnect_connect_failed: ['count==0'],
    reconnect_send_errors: ['count==0'],
    reconnect_first_message: [`p(99)<=${num('TTFM_P99_MS', 1000)}`],
  },
  summaryTrendStats: TREND_STATS,
};

export function storm() {
  const slot = exec.scenario.iterationInTest;
  const urls = targets();
  const warmAt = exec.scenario.startTime + CONNECT_S * 1000;
  const dropAt = warmAt + 2000;

  const mine = [];
  const members = [];
  for (let r = slot; r < ROOMS; r += VUS) {
    const seeded = rooms[r];
    const room = { id: seeded.id, head: 0, sender: null, sent: 0, acked: 0, n: 0 };
    mine.push(room);
    room.sender = { room, c: null, ready: false, failed: false };
    room.sender.c = openSocket(urls[r % urls.length], users[seeded.m[0]].t, senderHandlers(room.sender));
    seeded.m.forEach((userIndex, k) => {
      const m = { room, k, token: users[userIndex].t, url: urls[(r + k) % urls.length], c: null, gen: 0, attempts: 0, last: 0, ready: false, failed: false, resumed: false, firstAt: 0 };
      members.push(m);
      connect(m, false);
    });
  }
  const senders = mine.map((r) => r.sender);
  let phase = 'connect';
  let liveSentAt = 0;
  let logged = 0;
  const warn = (s) => {
    if (logged++ < 8) console.warn(s);
  };

  function senderHandlers(s) {
    return {
      onFrame(f) {
        if (f.type === 'ready') sendFrame(s.c, { type: 'resume', ref: 'r', convs: f.convs || {} });
        else if (f.type === 'resumed') s.ready = true;
        else if (f.type === 'ack') {
          s.room.acked++;
          if (f.seq > s.room.head) s.room.head = f.seq;
        } else if (f.type === 'error') {
          sendErrors.add(1);
          warn(`sender error: ${JSON.stringify(f)}`);
        }
      },
      onEvent() {},
      onClose(code) {
        if (phase !== 'done') {
          s.failed = true;
          warn(`sender socket closed: ${code}`);
        }
      },
      onError(msg) {
        s.failed = true;
        warn(`sender socket error: ${msg}`);
      },
    };
  }

  /** Opens (or reopens, after the drop) a member socket; `again` sends resume from `last`. */
  function connect(m, again) {
    const gen = ++m.gen;
    const resume = () => {
      if (!sendFrame(c, { type: 'resume', ref: 'r', convs: { [m.room.id]: m.last } })) warn(`resume not sent: readyState ${c.ws.readyState}, closed ${c.closed}, state ${c.state}`);
    };
    const c = openSocket(m.url, m.token, {
      // A reconnecting client knows its last seq: it resumes as soon as the socket opens, as the
      // SDK does, so the hub never starts live delivery before the resume however late k6 reads `ready`.
      onOpen() {
        if (again && gen === m.gen) resume();
      },
      onFrame(f, t) {
        if (gen !== m.gen) return; // a frame of the dropped socket
        if (f.type === 'ready') {
          if (!again) {
            m.last = (f.convs && f.convs[m.room.id]) || 0;
            resume();
          }
        } else if (f.type === 'resumed') {
          if (!again) m.ready = true;
          else if (!m.resumed) {
            m.resumed = true;
            resumeTime.add(t - dropAt);
            resumedCount.add(1);
          }
        } else if (f.type === 'gap') {
          gaps.add(1);
          warn(`gap frame: ${JSON.stringify(f)}`);
        }
      },
      onEvent(d, t) {
        if (gen !== m.gen) return;
        const seq = eventSeq(d);
        if (seq <= m.last) duplicates.add(1);
        else if (seq !== m.last + 1) {
          gaps.add(1);
          warn(`member skipped from ${m.last} to ${seq}`);
        }
        if (seq > m.last) m.last = seq;
        if (again && !m.firstAt) {
          m.firstAt = t;
          firstMessage.add(t - dropAt);
        }
      },
      onClose(code) {
        if (gen !== m.gen || phase === 'done') return;
        if (again ? !m.resumed : !m.ready) failedEarly(m, again, `closed with ${code}`);
      },
      onError(msg) {
        if (gen !== m.gen || phase === 'done') return;
        if (again ? !m.resumed : !m.ready) failedEarly(m, again, msg);
      },
    });
    m.c = c;
  }

  /** A socket that fails before resuming is retried like a real client would (counted). */
  function failedEarly(m, again, why) {
    m.gen++; // ignore the rest of this attempt
    if (m.attempts < 3) {
      m.attempts++;
      retries.add(1);
      warn(`retrying a member socket (${again ? 'after the drop' : 'initial'}): ${why}`);
      closeSocket(m.c);
      setTimeout(() => connect(m, again), 100 + Math.random() * 400);
      return;
    }
    if (!again) m.failed = true;
    warn(`member socket gave up: ${why}`);
  }

  function send(room, count) {
    const s = room.sender;
    for (let i = 0; i < count; i++) {
      room.n++;
      const now = Date.now();
      if (sendFrame(s.c, { type: 'send', ref: String(now), conv: room.id, cid: `${RUN_ID}.${room.n}`, body: makeBody(now, 0, room.n, 64) })) room.sent++;
    }
  }

  const timer = setInterval(() => {
    const now = Date.now();
    switch (phase) {
      case 'connect':
        if (now < warmAt) return;
        for (const m of members) if (!m.ready && !m.failed) (m.failed = true), warn('member not ready by the warm-up');
        for (const s of senders) if (!s.ready) s.failed = true;
        for (const room of mine) send(room, WARM);
        phase = 'warm';
        return;
      case 'warm':
        if (now < dropAt) return;
        // The storm: every member socket of every VU goes down at once and comes straight back.
        for (const m of members) {
          if (m.failed) continue;
          const old = m.c;
          m.gen++; // frames still arriving on the old socket are ignored from here on
          m.attempts = 0;
          closeSocket(old);
          connect(m, true);
        }
        for (const room of mine) send(room, MISSED);
        phase = 'resuming';
        return;
      case 'resuming': {
        const waiting = members.some((m) => !m.failed && !m.resumed);
        if (waiting && now - dropAt < RESUME_TIMEOUT_S * 1000) return;
        for (const room of mine) send(room, LIVE);
        liveSentAt = now;
        phase = 'live';
        return;
      }
      case 'live': {
        const pending = mine.some((r) => r.acked < r.sent) || members.some((m) => !m.failed && m.resumed && m.last < m.room.head);
        if (pending && now - liveSentAt < 10_000) return;
        phase = 'done';
        clearInterval(timer);
        let failedN = 0;
        for (const m of members) {
          if (m.failed) {
            failedN++;
            continue;
          }
          if (!m.resumed) notResumed.add(1);
          if (m.last < m.room.head) lost.add(m.room.head - m.last);
          closeSocket(m.c);
        }
        for (const s of senders) closeSocket(s.c);
        if (failedN) connectFailed.add(failedN);
        const unacked = mine.reduce((a, r) => a + r.sent - r.acked, 0);
        if (unacked) sendErrors.add(unacked);
        return;
      }
    }
  }, 10);
}
