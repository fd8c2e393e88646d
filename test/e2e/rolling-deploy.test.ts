import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatReport, runDrill } from '../helpers/drill.ts';
import { testEnv } from '../helpers/server.ts';

test('rolling deploy and scale-out behind HAProxy under load (short drill): every acked message reaches every member once, in order, and is stored once', async (t) => {
  const env = await testEnv('postgres', { redis: true });
  try {
    const r = await runDrill({ env: env.env, rooms: 4, members: 3, rate: 30, idle: 2, late: 3, warmupS: 2, settleS: 2 });
    for (const line of formatReport(r).split('\n')) t.diagnostic(line);
    assert.ok(r.sends.acked > 0 && r.sends.failed === 0, `sends ${JSON.stringify(r.sends)}`);
    assert.deepEqual(
      { lost: r.deliveries.lost, duplicated: r.deliveries.duplicated, outOfOrder: r.deliveries.outOfOrder },
      { lost: 0, duplicated: 0, outOfOrder: 0 },
    );
    assert.ok(r.deliveries.expected >= r.sends.acked * 3, 'each acked message was expected at every member');
    assert.deepEqual({ missing: r.stored.missing, storedTwice: r.stored.storedTwice }, { missing: 0, storedTwice: 0 });
    // Every hub drained: each replaced hub exited 0, and its clients reconnected (1012) and resumed.
    assert.deepEqual(
      r.steps.filter((s) => s.exitCode !== undefined).map((s) => s.exitCode),
      [0, 0, 0],
    );
    assert.ok((r.closeCodes['1012'] ?? 0) > 0 && r.reconnects.count >= r.closeCodes['1012']!, JSON.stringify(r.closeCodes));
    assert.equal(r.idle.closedOtherThan1012, 0);
    // After the scale-out, the new hub holds sockets (the late ones at least).
    const out = r.steps.find((s) => s.step.startsWith('scale 2 -> 3'))!;
    const newHub = /\((slot\d)\)/.exec(out.step)![1]!;
    assert.ok((out.sockets?.[newHub] ?? 0) > 0, JSON.stringify(out.sockets));
    assert.ok(r.ok);
  } finally {
    await env.cleanup();
  }
});
