import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { services } from '../helpers/env.ts';
import { freePort } from '../helpers/ports.ts';
import { createDatabase } from '../helpers/postgres.ts';
import { startRedis } from '../helpers/redis.ts';
import { sharedSecret } from '../helpers/server.ts';

const root = path.resolve(import.meta.dirname, '..', '..');

test('the worker process /health is 200 with its database, store and Redis reachable, and 503 naming Redis once Redis is gone', async () => {
  // Its own Redis, so killing it touches no other suite.
  const redis = await startRedis();
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'workers/src/main.ts'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      HOST: '127.0.0.1',
      WORKERS_METRICS_PORT: String(port),
      REDIS_URL: redis.url,
      DATABASE_URL: await createDatabase(services.databaseUrl()),
      JWT_SECRET: sharedSecret,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  try {
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (l) => l.includes('workers started') && resolve());
      void exited.then((c) => reject(new Error(`workers exited (${c}) before starting`)));
    });
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
    child.kill('SIGKILL');
    await exited;
    await redis.stop();
  }
});
