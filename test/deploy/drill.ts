/**
 * `npm run drill [-- --quick] [-- --image <ref>]`: the rolling-deploy and scale-out drill
 * (test/helpers/drill.ts) on its own PostgreSQL and Redis, hubs from the production build or in
 * containers of an image. Prints the report, writes it
 * to test-artifacts/drill/, and exits 1 unless every acked message reached every member once,
 * in order, and was stored once.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildServer } from '../../scripts/build.ts';
import { formatReport, runDrill } from '../helpers/drill.ts';
import { createDatabase, startPostgres } from '../helpers/postgres.ts';
import { startRedis } from '../helpers/redis.ts';

const root = path.resolve(import.meta.dirname, '..', '..');
const quick = process.argv.includes('--quick');
// --image <ref>: the hubs run in containers of that image (e.g. the Node 22 one scripts/image.sh builds).
const imageAt = process.argv.indexOf('--image');
const image = imageAt > 0 ? process.argv[imageAt + 1] : undefined;
const log = (line: string) => process.stderr.write(`[drill] ${line}\n`);

if (!image) await buildServer();
const [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
let ok = false;
try {
  const report = await runDrill({
    env: {
      DATABASE_URL: await createDatabase(pg.url),
      REDIS_URL: redis.url,
      JWT_SECRET: randomBytes(32).toString('base64url'),
      LOG_LEVEL: 'info',
    },
    ...(quick
      ? { rooms: 4, members: 3, rate: 30, idle: 2, late: 3, warmupS: 3, settleS: 3 }
      : { rooms: 20, members: 5, rate: 200, idle: 10, late: 10, warmupS: 15, settleS: 20 }),
    dist: true,
    image,
    log,
  });
  const text = formatReport(report);
  process.stdout.write(text + '\n');
  const dir = path.join(root, 'test-artifacts', 'drill');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  writeFileSync(path.join(dir, `${stamp}.json`), JSON.stringify(report, null, 2));
  writeFileSync(path.join(dir, `${stamp}.txt`), text + '\n');
  ok = report.ok;
} finally {
  await Promise.allSettled([pg.stop(), redis.stop()]);
}
process.exit(ok ? 0 : 1);
