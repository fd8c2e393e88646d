// The bench's seed file (load-tests/harness/seed.ts writes it): users with access tokens and
// the rooms they are in. Loaded once per k6 process into SharedArrays (not once per VU).
// SharedArray elements are copied on every access: scripts read what they need once.
import { SharedArray } from 'k6/data';

const SEED = __ENV.SEED;
if (!SEED) throw new Error('SEED (path of the bench seed file) is required: run through `npm run bench`');

let parsed = null;
const load = () => parsed || (parsed = JSON.parse(open(SEED)));

/** users[i] = {id, u: username, t: access token} */
export const users = new SharedArray('users', () => load().users);
/** rooms[r] = {id, m: [user index…]}: fanout, connect, api and reconnect rooms */
export const rooms = new SharedArray('rooms', () => load().rooms);
/** prooms[r]: rooms of 2 for the persistence test (their own users) */
export const prooms = new SharedArray('prooms', () => load().prooms);
export const password = new SharedArray('password', () => [load().password])[0];

/** `__ENV[k]` as a number, or `d`. */
export function num(k, d) {
  const v = __ENV[k];
  if (v === undefined || v === '') return d;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${k} must be a number, not ${v}`);
  return n;
}

export function str(k, d) {
  const v = __ENV[k];
  return v === undefined || v === '' ? d : v;
}

/** Trend stats the summaries export (the bench reads p(99.9) for the latency target). */
export const TREND_STATS = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)', 'p(99.9)', 'count'];
