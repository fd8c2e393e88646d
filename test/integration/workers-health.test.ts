import assert from 'node:assert/strict';
import { test } from 'node:test';
import { services } from '../helpers/env.ts';
import { spawnWorkers } from '../helpers/notify-workers.ts';
import { createDatabase } from '../helpers/postgres.ts';
import { startRedis } from '../helpers/redis.ts';

test('the worker process /health is 200 with its database, store and Redis reachable, and 503 naming Redis once Redis is gone', async () => {
  // Its own Redis, so killing it touches no other suite.
  const redis = await startRedis();
  const workers = await spawnWorkers({
    REDIS_URL: redis.url,
    DATABASE_URL: await createDatabase(services.databaseUrl()),
  });
  const port = workers.metricsPort;
  try {
    const up = await fetch(`http://127.0.0.1:${port}/health`);
    assert.equal(up.status, 200);
    assert.deepEqual(await up.json(), { status: 'ok', checks: { database: 'ok', store: 'ok', redis: 'ok' } });
    await redis.kill();
    const down = await fetch(`http://127.0.0.1:${port}/health`);
    assert.equal(down.status, 503);
    const body = (await down.json()) as { status: string; checks: Record<string, string> };
    assert.equal(body.status, 'unavailable');
    assert.equal(body.checks.database, 'ok');
    assert.notEqual(body.checks.redis, 'ok');
  } finally {
    await workers.kill();
    await workers.stop();
    await redis.stop();
  }
});
