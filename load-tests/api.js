// api: tRPC over plain HTTP under load: auth.login (argon2id verify on the hub) and
// conversations.history (a page of 50 from the message store), each at a constant arrival
// rate, against the target replicas round robin.
//
// Env: SEED, TARGETS, LOGIN_RATE (/s), HISTORY_RATE (/s), DURATION (s), LOGIN_P99_MS,
// HISTORY_P99_MS.
import { history, login } from './lib/api.js';
import { num, TREND_STATS } from './lib/seed.js';

const DURATION_S = num('DURATION', 30);
const LOGIN_RATE = num('LOGIN_RATE', 20);
const HISTORY_RATE = num('HISTORY_RATE', 200);

const scenarios = {};
const thresholds = {};
if (LOGIN_RATE > 0) {
  scenarios.login = {
    executor: 'constant-arrival-rate',
    exec: 'login',
    rate: LOGIN_RATE,
    timeUnit: '1s',
    duration: `${DURATION_S}s`,
    preAllocatedVUs: Math.max(4, Math.ceil(LOGIN_RATE / 4)),
    maxVUs: Math.max(8, LOGIN_RATE),
  };
  thresholds.login_duration = [`p(99)<=${num('LOGIN_P99_MS', 50)}`];
  thresholds.login_failed = ['count==0'];
}
if (HISTORY_RATE > 0) {
  scenarios.history = {
    executor: 'constant-arrival-rate',
    exec: 'history',
    rate: HISTORY_RATE,
    timeUnit: '1s',
    duration: `${DURATION_S}s`,
    preAllocatedVUs: Math.max(4, Math.ceil(HISTORY_RATE / 20)),
    maxVUs: Math.max(16, Math.ceil(HISTORY_RATE / 2)),
  };
  thresholds.history_duration = [`p(99)<=${num('HISTORY_P99_MS', 50)}`];
  thresholds.history_failed = ['count==0'];
}
thresholds.dropped_iterations = ['count==0'];

export const options = { scenarios, thresholds, summaryTrendStats: TREND_STATS };

export { history, login };
