import { and, isNotNull, lt, or } from 'drizzle-orm';
import type { Db } from '../../../server/src/db/database.ts';
import { refreshTokens, sessions } from '../../../db/schema/index.ts';
import type { MaintenanceJob } from '../queues.ts';

/**
 * Deletes what authentication no longer needs: refresh tokens past their expiry, and sessions
 * revoked (or idle past their last token) more than `keepDays` ago. Idempotent.
 */
export async function runMaintenance(db: Db, job: MaintenanceJob, now = new Date()) {
  const cutoff = new Date(now.getTime() - job.keepDays * 86_400_000);
  const tokens = await db.delete(refreshTokens).where(lt(refreshTokens.expiresAt, now)).returning({ h: refreshTokens.tokenHash });
  const gone = await db
    .delete(sessions)
    .where(or(and(isNotNull(sessions.revokedAt), lt(sessions.revokedAt, cutoff)), lt(sessions.lastUsedAt, cutoff)))
    .returning({ id: sessions.id });
  return { refreshTokens: tokens.length, sessions: gone.length };
}
