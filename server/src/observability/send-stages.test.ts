import assert from 'node:assert/strict';
import { test } from 'node:test';
import client from 'prom-client';
import { SendStages, STAGE_BOUNDS } from './send-stages.ts';

/** The cumulative count of `stage` at bound `le` from metrics text. */
const bucket = (text: string, stage: string, le: string) =>
  Number(
    new RegExp(`^hubbub_send_stage_seconds_bucket\\{stage="${stage}",le="${le.replace(/[+.]/g, '\\$&')}"\\} (\\S+)$`, 'm').exec(
      text,
    )?.[1] ?? NaN,
  );
const count = (text: string, stage: string) =>
  Number(new RegExp(`^hubbub_send_stage_seconds_count\\{stage="${stage}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

test('each stage is exported as a cumulative Prometheus histogram of what was observed', async () => {
  const registry = new client.Registry();
  const stages = new SendStages();
  stages.register(registry);
  stages.committed(1000, 1000.3); // 0.3 ms
  stages.committed(1000, 1004); // 4 ms
  stages.published(2000, 2000.01);
  stages.heard(3000, 2999); // a clock step backwards counts as 0
  const text = await registry.metrics();
  assert.equal(count(text, 'append'), 2);
  const le = (s: number) => String(STAGE_BOUNDS.find((b) => b >= s));
  assert.equal(bucket(text, 'append', le(0.0003)), 1);
  assert.equal(bucket(text, 'append', le(0.004)), 2);
  assert.equal(bucket(text, 'append', '+Inf'), 2);
  assert.equal(bucket(text, 'bus', String(STAGE_BOUNDS[0])), 1);
  assert.equal(count(text, 'publish'), 1);
  assert.equal(count(text, 'write'), 0);
  const sum = Number(/^hubbub_send_stage_seconds_sum\{stage="append"\} (\S+)$/m.exec(text)?.[1]);
  assert.ok(Math.abs(sum - 0.0043) < 1e-9, `sum ${sum}`);
});

test('events posted in a turn are timed at the flush that writes them, once each', async () => {
  const registry = new client.Registry();
  const stages = new SendStages();
  stages.register(registry);
  // More than the initial room, so the buffers grow.
  for (let i = 0; i < 300; i++) stages.posted(5000, 4990);
  stages.flushed(5002);
  stages.flushed(5010); // nothing posted since: nothing timed again
  const text = await registry.metrics();
  assert.equal(count(text, 'write'), 300);
  assert.equal(count(text, 'total'), 300);
  const le2 = String(STAGE_BOUNDS.find((b) => b >= 0.002));
  assert.equal(bucket(text, 'write', le2), 300);
  assert.equal(bucket(text, 'total', le2), 0);
});
