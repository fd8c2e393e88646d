// tRPC over plain HTTP JSON (no transformer), as any client can call it.
import http from 'k6/http';
import exec from 'k6/execution';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { httpBases } from './proto.js';
import { password, rooms, users, num } from './seed.js';

export const loginDuration = new Trend('login_duration', true);
export const loginFailed = new Counter('login_failed');
export const historyDuration = new Trend('history_duration', true);
export const historyFailed = new Counter('history_failed');

const bases = httpBases();
const LOGIN_USERS = Math.min(num('LOGIN_USERS', users.length), users.length);
const HISTORY_ROOMS = Math.min(num('HISTORY_ROOMS', rooms.length), rooms.length);
const JSON_HEADERS = { 'content-type': 'application/json' };

/**
 * A constant-arrival-rate scenario running `exec` at `rate`/s for `durationS` seconds, with
 * `perVU` iterations a second expected of one VU (so VUs scale with the rate).
 */
export function arrivalScenario(exec, rate, durationS, { perVU, minVUs, maxVUs, startTime }) {
  const s = {
    executor: 'constant-arrival-rate',
    exec,
    rate,
    timeUnit: '1s',
    duration: `${durationS}s`,
    // Every VU is initialised before the run: one started mid-run parses the seed file first,
    // and on a busy 2-core box that delay alone drops iterations.
    preAllocatedVUs: Math.max(minVUs, maxVUs, Math.ceil(rate / perVU)),
    maxVUs: Math.max(minVUs, maxVUs, Math.ceil(rate / perVU)),
  };
  if (startTime) s.startTime = startTime;
  return s;
}

/** One auth.login with a seeded user's username and password (argon2id verify on the hub). */
export function login() {
  const i = exec.scenario.iterationInTest;
  const u = users[i % LOGIN_USERS];
  const res = http.post(`${bases[i % bases.length]}/trpc/auth.login`, JSON.stringify({ login: u.u, password }), {
    headers: JSON_HEADERS,
    tags: { name: 'auth.login' },
  });
  loginDuration.add(res.timings.duration);
  const ok = check(res, {
    'login 200': (r) => r.status === 200,
    'login returns tokens': (r) => r.status === 200 && typeof r.json('result.data.accessToken') === 'string',
  });
  if (!ok) loginFailed.add(1);
}

/** One conversations.history page (newest 50) of a seeded room, as one of its members. */
export function history() {
  const i = exec.scenario.iterationInTest;
  const room = rooms[i % HISTORY_ROOMS];
  const member = users[room.m[i % room.m.length]];
  const input = encodeURIComponent(JSON.stringify({ conversationId: room.id, limit: 50 }));
  const res = http.get(`${bases[i % bases.length]}/trpc/conversations.history?input=${input}`, {
    headers: { authorization: `Bearer ${member.t}` },
    tags: { name: 'conversations.history' },
  });
  historyDuration.add(res.timings.duration);
  const ok = check(res, { 'history 200': (r) => r.status === 200 });
  if (!ok) historyFailed.add(1);
}
