import { eq } from 'drizzle-orm';
import {
  conversationNotify,
  notificationDeliveries,
  notificationSettings,
  notifyCursors,
  pushSubscriptions,
  webhooks,
} from '../../../db/schema/index.ts';
import type { Db } from '../db/database.ts';

/** A user's notification data for `account.export` (webhook secrets left out: they are credentials). */
export async function exportNotifications(db: Db, userId: string) {
  const [settings, levels, subscriptions, hooks, deliveries] = await Promise.all([
    db.select().from(notificationSettings).where(eq(notificationSettings.userId, userId)),
    db
      .select({ conversationId: conversationNotify.conversationId, level: conversationNotify.level })
      .from(conversationNotify)
      .where(eq(conversationNotify.userId, userId)),
    db
      .select({ endpoint: pushSubscriptions.endpoint, createdAt: pushSubscriptions.createdAt })
      .from(pushSubscriptions)
      .where(eq(pushSubscriptions.userId, userId)),
    db.select({ id: webhooks.id, url: webhooks.url, createdAt: webhooks.createdAt }).from(webhooks).where(eq(webhooks.userId, userId)),
    db
      .select({
        id: notificationDeliveries.id,
        channel: notificationDeliveries.channel,
        status: notificationDeliveries.status,
        range: notificationDeliveries.rangeKey,
        createdAt: notificationDeliveries.createdAt,
      })
      .from(notificationDeliveries)
      .where(eq(notificationDeliveries.userId, userId)),
  ]);
  return { settings: settings[0] ?? null, conversations: levels, pushSubscriptions: subscriptions, webhooks: hooks, deliveries };
}

/** `account.delete`: the user row stays as a tombstone, so the cascades do not run; erase here. */
export async function eraseNotifications(tx: Pick<Db, 'delete'>, userId: string) {
  await tx.delete(pushSubscriptions).where(eq(pushSubscriptions.userId, userId));
  await tx.delete(webhooks).where(eq(webhooks.userId, userId));
  await tx.delete(notificationSettings).where(eq(notificationSettings.userId, userId));
  await tx.delete(conversationNotify).where(eq(conversationNotify.userId, userId));
  await tx.delete(notifyCursors).where(eq(notifyCursors.userId, userId));
  await tx.delete(notificationDeliveries).where(eq(notificationDeliveries.userId, userId));
}
