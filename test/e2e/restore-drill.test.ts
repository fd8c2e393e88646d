import assert from 'node:assert/strict';
import { test } from 'node:test';
import { services } from '../helpers/env.ts';
import { formatRestoreReport, runRestoreDrill } from '../helpers/restore-drill.ts';

test('5.9 restore drill on PostgreSQL: base backup, more acks, database destroyed, restored to the backup point; every client ends with exactly the server history, acks after the point reported lost, queued sends stored once', async (t) => {
  const r = await runRestoreDrill({ redisUrl: services.redisUrl(), rooms: 2, members: 3, before: 8, after: 5, queued: 2 });
  for (const line of formatRestoreReport(r).split('\n')) t.diagnostic(line);
  assert.deepEqual(r.problems, []);
  assert.equal(r.recovered, r.ackedBeforePoint, 'every message acked before the point is back');
  assert.equal(r.reportedLost, r.ackedAfterPoint, 'every ack after the point was reported lost to its sender');
  assert.deepEqual(r.queued, { sent: r.clients * 2, storedOnce: r.clients * 2 });
  assert.equal(r.clientsMatching, r.clients);
  assert.equal(r.rewoundNotices, r.clients, 'each client was told its position was void, once');
  assert.ok(r.walArchived > 0, 'the archive_command script archived WAL');
});

test('5.9 point-in-time restore drill on PostgreSQL: base backup, more acks, time T, more acks, restored to T from the WAL archive; every ack before T is back, every ack after it reported lost, queued sends stored once, clients equal the server', async (t) => {
  const r = await runRestoreDrill({
    redisUrl: services.redisUrl(),
    rooms: 2,
    members: 3,
    before: 4,
    after: 4,
    queued: 2,
    pointInTime: true,
  });
  for (const line of formatRestoreReport(r).split('\n')) t.diagnostic(line);
  assert.notEqual(r.target, 'immediate');
  assert.deepEqual(r.problems, []);
  assert.equal(r.ackedBeforePoint, r.clients * 8, 'acks before T: half before the base backup, half replayed from the WAL archive');
  assert.equal(r.recovered, r.ackedBeforePoint, 'every message acked before T is back');
  assert.equal(r.ackedAfterPoint, r.clients * 4);
  assert.equal(r.reportedLost, r.ackedAfterPoint, 'every ack after T was reported lost to its sender');
  assert.deepEqual(r.queued, { sent: r.clients * 2, storedOnce: r.clients * 2 });
  assert.equal(r.clientsMatching, r.clients);
  assert.equal(r.rewoundNotices, r.clients, 'each client was told its position was void, once');
});
