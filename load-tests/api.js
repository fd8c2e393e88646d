// api: tRPC over plain HTTP under load: auth.login (argon2id verify on the hub) and
// conversations.history (a page of 50 from the message store), each at a constant arrival
// rate, against the target replicas round robin.
//
// Env: SEED, TARGETS, LOGIN_RATE (/s), HISTORY_RATE (/s), DURATION (s), LOGIN_P99_MS,
// HISTORY_P99_MS.
import { arrivalScenario, history, login } from './lib/api.js';
import { num, TREND_STATS } from './lib/seed.js';

const DURATION_S = num('DURATION', 30);
const LOGIN_RATE = num('LOGIN_RATE', 20);
const HISTORY_RATE = num('HISTORY_RATE', 200);

const scenarios = {};
const thresholds = {};
if (LOGIN_RATE > 0) {
  scenarios.login = arrivalScenario('login', LOGIN_RATE, DURATION_S, { perVU: 4, minVUs: 8, maxVUs: LOGIN_RATE });
  thresholds.login_duration = [`p(99)<=${num('LOGIN_P99_MS', 50)}`];
  thresholds.login_failed = ['count==0'];
}
if (HISTORY_RATE > 0) {
  scenarios.history = arrivalScenario('history', HISTORY_RATE, DURATION_S, { perVU: 20, minVUs: 16, maxVUs: Math.ceil(HISTORY_RATE / 2) });
  thresholds.history_duration = [`p(99)<=${num('HISTORY_P99_MS', 50)}`];
  thresholds.history_failed = ['count==0'];
}
thresholds.dropped_iterations = ['count==0'];

export const options = { scenarios, thresholds, summaryTrendStats: TREND_STATS };

export { history, login };
