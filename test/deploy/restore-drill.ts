/**
 * `npm run drill:restore`: the restore drill (test/helpers/restore-drill.ts) at a larger size,
 * with its own Redis; prints the report and exits non-zero when a check fails. With
 * `--point-in-time`, restores to a time T between acks instead of the base backup's end.
 */
import { formatRestoreReport, runRestoreDrill } from '../helpers/restore-drill.ts';
import { startRedis } from '../helpers/redis.ts';

const redis = await startRedis();
let ok = false;
try {
  const r = await runRestoreDrill({
    redisUrl: redis.url,
    rooms: 4,
    members: 4,
    before: 25,
    after: 10,
    queued: 3,
    pointInTime: process.argv.includes('--point-in-time'),
  });
  process.stdout.write(formatRestoreReport(r) + '\n');
  ok =
    r.problems.length === 0 &&
    r.recovered === r.ackedBeforePoint &&
    r.reportedLost === r.ackedAfterPoint &&
    r.queued.storedOnce === r.queued.sent &&
    r.clientsMatching === r.clients;
} finally {
  await redis.stop();
}
process.exit(ok ? 0 : 1);
