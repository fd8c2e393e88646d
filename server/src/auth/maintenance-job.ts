import { and, isNotNull, lt, or } from 'drizzle-orm';
import { z } from 'zod';
import { refreshTokens, sessions } from '../../../db/schema/index.ts';
import type { Db } from '../db/database.ts';
import type { RepeatingJob } from '../jobs/repeating-job.ts';

export const maintenanceQueue = 'maintenance';
export const maintenancePayload = z.strictObject({
  /** Revoked or expired sessions older than this are deleted with their refresh tokens. */
  keepDays: z.number().int().min(1).max(3650).default(30),
});
export type MaintenancePayload = z.infer<typeof maintenancePayload>;

/** How often the maintenance job runs. */
export const MAINTENANCE_EVERY_MS = 60 * 60 * 1000;

/**
 * Deletes what authentication no longer needs: refresh tokens past their expiry, and sessions
 * revoked (or idle past their last token) more than `keepDays` ago. Idempotent.
 */
export async function runMaintenance(db: Db, job: MaintenancePayload, now = new Date()) {
  const cutoff = new Date(now.getTime() - job.keepDays * 86_400_000);
  const tokens = await db.delete(refreshTokens).where(lt(refreshTokens.expiresAt, now)).returning({ h: refreshTokens.tokenHash });
  const gone = await db
    .delete(sessions)
    .where(or(and(isNotNull(sessions.revokedAt), lt(sessions.revokedAt, cutoff)), lt(sessions.lastUsedAt, cutoff)))
    .returning({ id: sessions.id });
  return { refreshTokens: tokens.length, sessions: gone.length };
}

/** The hourly maintenance as a repeating job (its payload's defaults are the settings). */
export function maintenanceJob(db: Db, everyMs = MAINTENANCE_EVERY_MS): RepeatingJob<MaintenancePayload> {
  return {
    queue: maintenanceQueue,
    schedulerId: 'maintenance-hourly',
    everyMs,
    payload: maintenancePayload,
    data: maintenancePayload.parse({}),
    run: (data) => runMaintenance(db, data),
  };
}
