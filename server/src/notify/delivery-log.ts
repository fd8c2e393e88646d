import { randomUUID } from 'node:crypto';
import { and, eq, isNull, sql } from 'drizzle-orm';
import { notificationDeliveries } from '../../../db/schema/index.ts';
import { rowsOf, type Db } from '../db/database.ts';
import type { NotifyChannel } from './notify-jobs.ts';
import type { ConversationPlan } from './send-plan.ts';

export interface Delivery {
  id: string;
  target: string;
  payload: Record<string, unknown>;
  attempts: number;
}

export interface StoredDelivery extends Delivery {
  userId: string;
  status: 'sending' | 'sent' | 'failed';
}

class LostClaim extends Error {}

/**
 * The record that makes a notification happen once per (user, channel, target, seq range), even
 * when a worker dies mid-job and the job runs again:
 *
 * 1. claim: in one transaction, move this channel's cursor of each conversation from the value
 *    the plan was read at to the plan's last seq (a compare-and-set: a concurrent job that got
 *    there first makes this claim fail, and it sends nothing), and insert one `sending` row per
 *    target holding the exact payload;
 * 2. send that payload, with the row id as the idempotency key on the wire;
 * 3. mark the row `sent` or `failed`.
 *
 * A job that runs again first finishes its `sending` rows (same id, same payload) before it
 * plans anything new, so a crash before the send re-sends it (not zero), and a crash after the
 * send but before step 3 sends the same id again, which the receiver collapses (Web Push
 * `Topic`, `Hubbub-Event-Id`, `Message-ID`): not two.
 */
export class DeliveryLog {
  constructor(private readonly db: Db) {}

  async pending(userId: string, channel: NotifyChannel, conv: string | null): Promise<Delivery[]> {
    const d = notificationDeliveries;
    return this.db
      .select({ id: d.id, target: d.target, payload: d.payload, attempts: d.attempts })
      .from(d)
      .where(
        and(
          eq(d.userId, userId),
          eq(d.channel, channel),
          conv ? eq(d.conversationId, conv) : isNull(d.conversationId),
          eq(d.status, 'sending'),
        ),
      );
  }

  /** One delivery by id (a send job's row). */
  async get(id: string): Promise<StoredDelivery | null> {
    const d = notificationDeliveries;
    const [row] = await this.db
      .select({ id: d.id, userId: d.userId, target: d.target, payload: d.payload, attempts: d.attempts, status: d.status })
      .from(d)
      .where(eq(d.id, id));
    return row ?? null;
  }

  /** Claims the plans for these targets; null when another run claimed (part of) them first. */
  async claim(c: {
    userId: string;
    channel: NotifyChannel;
    conv: string | null;
    plans: ConversationPlan[];
    targets: string[];
    payload: (target: string) => Record<string, unknown>;
  }): Promise<Delivery[] | null> {
    const rangeKey = c.plans
      .map((p) => `${p.conv}:${p.fromSeq}-${p.toSeq}`)
      .sort()
      .join(',');
    try {
      return await this.db.transaction(async (tx) => {
        for (const p of c.plans) {
          const moved = rowsOf<{ seq: number }>(
            await tx.execute(sql`
              insert into notify_cursors (user_id, conversation_id, channel, seq) values (${c.userId}, ${p.conv}, ${c.channel}, ${p.toSeq})
              on conflict (user_id, conversation_id, channel) do update set seq = excluded.seq
                where notify_cursors.seq <= ${p.cursor}
              returning seq`),
          );
          if (!moved.length) throw new LostClaim();
        }
        if (!c.targets.length) return [];
        const rows = c.targets.map((target) => ({
          id: randomUUID(),
          userId: c.userId,
          channel: c.channel,
          target,
          conversationId: c.conv,
          rangeKey,
          status: 'sending' as const,
          payload: c.payload(target),
        }));
        const inserted = await tx.insert(notificationDeliveries).values(rows).onConflictDoNothing().returning({
          id: notificationDeliveries.id,
          target: notificationDeliveries.target,
          payload: notificationDeliveries.payload,
          attempts: notificationDeliveries.attempts,
        });
        return inserted;
      });
    } catch (err) {
      if (err instanceof LostClaim) return null;
      throw err;
    }
  }

  async attempted(id: string, error: string) {
    await this.db
      .update(notificationDeliveries)
      .set({ attempts: sql`${notificationDeliveries.attempts} + 1`, error: error.slice(0, 500) })
      .where(eq(notificationDeliveries.id, id));
  }

  /** Says why a delivery waits without counting an attempt (its endpoint is paused). */
  async note(id: string, error: string) {
    await this.db
      .update(notificationDeliveries)
      .set({ error: error.slice(0, 500) })
      .where(and(eq(notificationDeliveries.id, id), eq(notificationDeliveries.status, 'sending')));
  }

  /** Records the outcome; `counted` when the attempt was already counted by `attempted` (a retry given up). */
  async finish(id: string, status: 'sent' | 'failed', error?: string, counted = false) {
    await this.db
      .update(notificationDeliveries)
      .set({
        status,
        finishedAt: new Date(),
        attempts: counted ? notificationDeliveries.attempts : sql`${notificationDeliveries.attempts} + 1`,
        error: error?.slice(0, 500) ?? null,
      })
      .where(and(eq(notificationDeliveries.id, id), eq(notificationDeliveries.status, 'sending')));
  }
}
