// connect: a connection storm. Each VU opens its share of CONNECTIONS authenticated sockets at
// once (tokens were issued by the bench's seeding, not in this loop), spread round robin over
// TARGETS; a socket counts as connected when the server has answered `ready` and then its
// `resume` with `resumed` (the whole client handshake). Every socket then stays open and idle
// for HOLD seconds (the bench samples the servers' memory meanwhile) and closes.
//
// Env: SEED, TARGETS, PROTO, CONNECTIONS (≤ seeded users), VUS, HOLD (s), CONNECT_TIMEOUT (s),
// CONNECT_P95_MS (threshold on the time to resumed).
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';
import { closeSocket, openSocket, PROTO, sendFrame, targets } from './lib/proto.js';
import { num, TREND_STATS, users } from './lib/seed.js';

const CONNECTIONS = Math.min(num('CONNECTIONS', users.length), users.length);
const VUS = Math.max(1, Math.min(num('VUS', 8), CONNECTIONS));
const HOLD_S = num('HOLD', 10);
const TIMEOUT_S = num('CONNECT_TIMEOUT', 60);
const HANDSHAKE_TIMEOUT_MS = num('HANDSHAKE_TIMEOUT_MS', 20_000);

const connectTime = new Trend('connect_time', true);
const connected = new Counter('connect_ok');
const failed = new Counter('connect_failed');
const droppedWhileIdle = new Counter('connect_dropped_idle');
const retries = new Counter('connect_retries');

export const options = {
  scenarios: {
    storm: { executor: 'per-vu-iterations', exec: 'storm', vus: VUS, iterations: 1, maxDuration: `${TIMEOUT_S + HOLD_S + 60}s` },
  },
  thresholds: {
    connect_failed: ['count==0'],
    connect_dropped_idle: ['count==0'],
    connect_ok: [`count==${CONNECTIONS}`],
    connect_time: [`p(95)<=${num('CONNECT_P95_MS', 10000)}`],
  },
  summaryTrendStats: TREND_STATS,
};

export function storm() {
  const slot = exec.scenario.iterationInTest;
  const urls = targets();
  const socks = [];
  let settled = 0;
  let ok = 0;
  let logged = 0;
  let holdUntil = 0;
  let lastHandshakeCheck = 0;
  const startedAt = Date.now();
  const settle = (s, good, why) => {
    if (s.settled) return;
    s.settled = true;
    settled++;
    if (good) ok++;
    else if (logged++ < 5) console.warn(`${PROTO} connect failed: ${why}`);
  };
  for (let i = slot; i < CONNECTIONS; i += VUS) {
    const s = { url: urls[i % urls.length], token: users[i].t, c: null, gen: 0, attempts: 0, settled: false, good: false, done: false, openedAt: Date.now() };
    socks.push(s);
    open(s);
  }

  /** Opens a socket; one that fails before `resumed` is retried (counted) like a real client. */
  function open(s) {
    const gen = ++s.gen;
    s.attemptAt = Date.now();
    const failedEarly = (why) => {
      if (gen !== s.gen || s.settled) return;
      s.gen++;
      if (s.attempts < 3) {
        s.attempts++;
        retries.add(1);
        if (logged++ < 5) console.warn(`${PROTO} retrying a socket that failed before resume: ${why}`);
        closeSocket(s.c);
        s.attemptAt = 0; // no handshake timeout until it is reopened
        setTimeout(() => open(s), 100 + Math.random() * 400);
      } else settle(s, false, why);
    };
    s.retry = failedEarly;
    s.c = openSocket(s.url, s.token, {
      onFrame(f, t) {
        if (gen !== s.gen) return;
        if (f.type === 'ready') {
          s.readyAt = Date.now();
          if (!sendFrame(s.c, { type: 'resume', ref: 'r', convs: f.convs || {} }) && logged++ < 5) {
            console.warn(`${PROTO} resume not sent: readyState ${s.c.ws.readyState}, closed ${s.c.closed}, state ${s.c.state}`);
          }
        }
        else if (f.type === 'resumed' && !s.settled) {
          connectTime.add(t - s.openedAt); // from the first attempt
          s.good = true;
          settle(s, true);
        }
      },
      onEvent() {},
      onClose(code) {
        if (gen !== s.gen) return;
        if (!s.settled) failedEarly(`closed with ${code}`);
        else if (s.good && !s.done) {
          droppedWhileIdle.add(1);
          if (logged++ < 5) console.warn(`${PROTO} idle socket dropped: ${code}`);
        }
      },
      onError(msg) {
        if (!s.settled) failedEarly(msg);
      },
    });
  }
  const timer = setInterval(() => {
    const now = Date.now();
    if (!holdUntil) {
      // A handshake that hangs is retried, as a client with a handshake timeout would.
      if (now - lastHandshakeCheck > 1000) {
        lastHandshakeCheck = now;
        for (const s of socks) if (!s.settled && s.attemptAt && now - s.attemptAt > HANDSHAKE_TIMEOUT_MS) s.retry(`no resume after ${HANDSHAKE_TIMEOUT_MS} ms (${s.readyAt ? `ready came ${s.readyAt - s.attemptAt} ms in` : 'no ready'})`);
      }
      if (settled < socks.length && now - startedAt < TIMEOUT_S * 1000) return;
      for (const s of socks) settle(s, false, 'timed out');
      connected.add(ok);
      failed.add(socks.length - ok);
      holdUntil = now + HOLD_S * 1000;
      return;
    }
    if (now < holdUntil) return;
    clearInterval(timer);
    for (const s of socks) {
      s.done = true;
      closeSocket(s.c);
    }
  }, 50);
}
