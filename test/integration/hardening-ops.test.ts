import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { loadConfig, testConfig } from '../../server/src/config.ts';
import { createMetrics } from '../../server/src/observability/metrics.ts';
import { startReplica } from '../../server/src/replica.ts';
import { newUser, testEnv } from '../helpers/server.ts';
import { upgradeStatus } from '../helpers/ws.ts';
import { npmStart } from '../helpers/npm-start.ts';

test('ALLOWED_ORIGINS defaults to the origins of PORT; an explicit list wins', () => {
  assert.deepEqual(loadConfig({ PORT: '3100' }).ALLOWED_ORIGINS, ['http://localhost:3100', 'http://127.0.0.1:3100']);
  assert.deepEqual(loadConfig({}).ALLOWED_ORIGINS, ['http://localhost:3000', 'http://127.0.0.1:3000']);
  assert.deepEqual(loadConfig({ PORT: '3100', ALLOWED_ORIGINS: 'https://a.example' }).ALLOWED_ORIGINS, ['https://a.example']);
});

test('process metrics are hubbub_process_… and never hubbub_process_process_…', async () => {
  const m = createMetrics();
  const names = (await m.registry.getMetricsAsJSON()).map((x) => x.name);
  assert.ok(names.includes('hubbub_process_resident_memory_bytes'), names.join(' '));
  assert.ok(names.includes('hubbub_process_cpu_seconds_total'));
  assert.ok(!names.some((n) => n.includes('process_process')), names.filter((n) => n.includes('process_process')).join(' '));
  m.registry.clear();
});

test('a refused origin is logged (rate-limited, no token in the log)', async () => {
  const env = await testEnv('pglite');
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _e, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  const logger = pino({ level: 'info' }, sink);
  const replica = await startReplica(testConfig({ ...env.env, ALLOWED_ORIGINS: 'https://app.example.com' }), { logger });
  try {
    const u = await newUser(replica.port, 'origin');
    for (let i = 0; i < 30; i++) {
      assert.equal(
        await upgradeStatus(replica.port, { authorization: `Bearer ${u.accessToken}`, origin: 'https://evil.example.com' }),
        403,
      );
    }
    const refusals = lines.filter((l) => l.msg === 'socket origin refused');
    assert.ok(refusals.length >= 1 && refusals.length <= 3, `logged ${refusals.length} times for 30 refusals`);
    assert.equal(refusals[0]!.origin, 'https://evil.example.com');
    assert.ok(!JSON.stringify(lines).includes(u.accessToken));
  } finally {
    await replica.stop();
    await env.cleanup();
  }
});

test('SIGTERM to the `npm start` pid stops the server (drained, nothing left running)', async () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-sigterm-'));
  const s = npmStart(dataDir);
  try {
    const port = await s.port;
    assert.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 200);
    // Only the pid a process manager knows, not the process group.
    process.kill(s.child.pid!, 'SIGTERM');
    // `exited`: every holder of the stdout pipe (npm and whatever it started) is gone.
    const outcome = await Promise.race([
      s.exited.then(() => 'stopped'),
      new Promise((r) => setTimeout(() => r('still running after 20 s'), 20_000)),
    ]);
    assert.equal(outcome, 'stopped');
    assert.ok(s.messages.includes('drained, exiting'), s.messages.join(', '));
    await assert.rejects(fetch(`http://127.0.0.1:${port}/health`));
  } finally {
    try {
      process.kill(-s.child.pid!, 'SIGKILL');
    } catch {
      // gone
    }
    rmSync(dataDir, { recursive: true, force: true });
  }
});
