import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { eq } from 'drizzle-orm';
import { openDatabase, type Database } from '../../server/src/db/database.ts';
import { createLogger } from '../../server/src/observability/logger.ts';
import { refreshTokens, sessions, users } from '../../db/schema/index.ts';
import { maintenanceJob, maintenanceQueue } from '../../server/src/auth/maintenance-job.ts';
import { redisConnection } from '../../server/src/jobs/redis-connection.ts';
import { startRepeatingJobs } from '../../server/src/jobs/repeating-job.bullmq.ts';
import { services } from '../helpers/env.ts';
import { createDatabase } from '../helpers/postgres.ts';

describe('workers: BullMQ on real Redis, real PostgreSQL', () => {
  let database: Database;
  before(async () => {
    database = await openDatabase({ databaseUrl: await createDatabase(services.databaseUrl()), dataDir: 'unused' });
    await database.migrate();
  });
  after(async () => database?.close());

  test('the scheduled maintenance job purges expired refresh tokens and old revoked sessions, and keeps live ones', async () => {
    const db = database.db;
    const uid = randomUUID();
    await db.insert(users).values({ id: uid, email: `${uid}@x.test`, username: `w_${uid.slice(0, 8)}` });
    const live = randomUUID();
    const old = randomUUID();
    const longAgo = new Date(Date.now() - 90 * 86_400_000);
    await db.insert(sessions).values([
      { id: live, userId: uid },
      { id: old, userId: uid, revokedAt: longAgo, lastUsedAt: longAgo },
    ]);
    await db.insert(refreshTokens).values([
      { tokenHash: 'live-token', sessionId: live, expiresAt: new Date(Date.now() + 86_400_000) },
      { tokenHash: 'expired-token', sessionId: live, expiresAt: new Date(Date.now() - 1000) },
      { tokenHash: 'old-session-token', sessionId: old, expiresAt: new Date(Date.now() + 86_400_000) },
    ]);
    const workers = await startRepeatingJobs([maintenanceJob(db, 60_000)], {
      connection: redisConnection(services.redisUrl()),
      prefix: `t${randomBytes(4).toString('hex')}`,
      logger: createLogger({ level: 'silent', replicaId: 'w' }),
    });
    try {
      // The scheduler enqueues a first run at once; wait for its completion event.
      const result = await new Promise<{ refreshTokens: number; sessions: number }>((resolve, reject) => {
        workers.worker(maintenanceQueue).once('completed', (_job, r) => resolve(r));
        workers.worker(maintenanceQueue).once('failed', (_job, err) => reject(err));
      });
      assert.deepEqual(result, { refreshTokens: 1, sessions: 1 });
      const left = await db.select({ h: refreshTokens.tokenHash }).from(refreshTokens);
      assert.deepEqual(
        left.map((r) => r.h),
        ['live-token'],
      );
      assert.deepEqual(
        (await db.select({ id: sessions.id }).from(sessions).where(eq(sessions.userId, uid))).map((s) => s.id),
        [live],
      );
    } finally {
      await workers.close();
    }
  });
});
