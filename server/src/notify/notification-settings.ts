import { randomBytes, randomUUID } from 'node:crypto';
import { and, desc, eq, inArray, sql } from 'drizzle-orm';
import {
  conversationNotify,
  members,
  notificationDeliveries,
  notificationSettings,
  pushSubscriptions,
  webhooks,
} from '../../../db/schema/index.ts';
import type { Db } from '../db/database.ts';
import { DomainError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { EndpointBreaker } from './endpoint-breaker.ts';
import { checkUrl } from './net-guard.ts';
import type { QuietHours } from './quiet-hours.ts';

export type Level = 'all' | 'mentions' | 'none';

export interface SettingsView {
  push: boolean;
  email: boolean;
  previews: boolean;
  quietHours: QuietHours | null;
  conversations: Record<string, Level>;
  /** Whether this server can send email at all (SMTP_URL is set): without it `email` is a preference that nothing acts on. */
  emailAvailable: boolean;
}

export interface SettingsUpdate {
  push?: boolean;
  email?: boolean;
  previews?: boolean;
  quietHours?: QuietHours | null;
  conversations?: Record<string, Level>;
}

/** At most this many webhooks and push subscriptions per user. */
export const MAX_WEBHOOKS = 10;
export const MAX_PUSH_SUBSCRIPTIONS = 50;

const newSecret = () => 'whsec_' + randomBytes(32).toString('base64url');

/**
 * The notification settings of users, their push subscriptions and webhooks, and the record of
 * deliveries, as the tRPC API sees them. Inputs arrive validated in shape (api/routers); this
 * checks what needs the database (membership, ownership, limits) and the URLs.
 */
export class NotificationSettings {
  constructor(
    private readonly d: {
      db: Db;
      allowPrivate: boolean;
      vapidPublicKey: string | null;
      /** SMTP is configured, so email digests can be sent. */
      emailAvailable: boolean;
      /** Which endpoints are paused now (read only: the workers keep the breakers). */
      breaker: Pick<EndpointBreaker, 'pausedUntil'>;
      logger: Logger;
    },
  ) {}

  /** When each of these endpoints' pause ends, for those paused now. */
  private async paused(targets: string[]): Promise<Map<string, number>> {
    if (!targets.length) return new Map();
    try {
      return await this.d.breaker.pausedUntil(targets);
    } catch (err) {
      // Redis away: the listing is still right without the pauses, which only explain a wait.
      this.d.logger.warn({ err: (err as Error).message }, 'endpoint pauses unknown');
      return new Map();
    }
  }

  vapidPublicKey() {
    return { publicKey: this.d.vapidPublicKey };
  }

  async get(userId: string): Promise<SettingsView> {
    const db = this.d.db;
    const [s] = await db.select().from(notificationSettings).where(eq(notificationSettings.userId, userId));
    const levels = await db
      .select({ conv: conversationNotify.conversationId, level: conversationNotify.level })
      .from(conversationNotify)
      .where(eq(conversationNotify.userId, userId));
    return {
      push: s?.push ?? true,
      email: s?.email ?? true,
      previews: s?.previews ?? true,
      quietHours: s?.quietStart ? { start: s.quietStart, end: s.quietEnd!, timezone: s.quietTz! } : null,
      conversations: Object.fromEntries(levels.map((l) => [l.conv, l.level])),
      emailAvailable: this.d.emailAvailable,
    };
  }

  async update(userId: string, u: SettingsUpdate): Promise<SettingsView> {
    const convIds = Object.keys(u.conversations ?? {});
    await this.d.db.transaction(async (tx) => {
      if (convIds.length) {
        const mine = await tx
          .select({ c: members.conversationId })
          .from(members)
          .where(and(eq(members.userId, userId), inArray(members.conversationId, convIds)));
        if (mine.length !== convIds.length) throw new DomainError('NOT_FOUND', 'not a member of every conversation named');
      }
      const row: Partial<typeof notificationSettings.$inferInsert> = {};
      if (u.push !== undefined) row.push = u.push;
      if (u.email !== undefined) row.email = u.email;
      if (u.previews !== undefined) row.previews = u.previews;
      if (u.quietHours !== undefined) {
        row.quietStart = u.quietHours?.start ?? null;
        row.quietEnd = u.quietHours?.end ?? null;
        row.quietTz = u.quietHours?.timezone ?? null;
      }
      if (Object.keys(row).length) {
        await tx
          .insert(notificationSettings)
          .values({ userId, ...row })
          .onConflictDoUpdate({ target: notificationSettings.userId, set: { ...row, updatedAt: new Date() } });
      }
      for (const [conv, level] of Object.entries(u.conversations ?? {})) {
        if (level === 'all') {
          await tx
            .delete(conversationNotify)
            .where(and(eq(conversationNotify.userId, userId), eq(conversationNotify.conversationId, conv)));
        } else {
          await tx
            .insert(conversationNotify)
            .values({ userId, conversationId: conv, level })
            .onConflictDoUpdate({ target: [conversationNotify.userId, conversationNotify.conversationId], set: { level } });
        }
      }
    });
    return this.get(userId);
  }

  /** The signed unsubscribe link: email off for this user. */
  async unsubscribeEmail(userId: string) {
    await this.d.db
      .insert(notificationSettings)
      .values({ userId, email: false })
      .onConflictDoUpdate({ target: notificationSettings.userId, set: { email: false, updatedAt: new Date() } });
  }

  async registerPush(userId: string, s: { endpoint: string; keys: { p256dh: string; auth: string } }) {
    if (!this.d.vapidPublicKey) throw new DomainError('BAD_REQUEST', 'Web Push is not configured on this server');
    await checkUrl(s.endpoint, this.d.allowPrivate);
    const p256dh = Buffer.from(s.keys.p256dh, 'base64url');
    if (p256dh.length !== 65 || p256dh[0] !== 4)
      throw new DomainError('BAD_REQUEST', 'keys.p256dh must be an uncompressed P-256 point (65 bytes)');
    if (Buffer.from(s.keys.auth, 'base64url').length !== 16) throw new DomainError('BAD_REQUEST', 'keys.auth must be 16 bytes');
    return this.d.db.transaction(async (tx) => {
      const [{ n }] = (await tx
        .select({ n: sql<number>`count(*)::int` })
        .from(pushSubscriptions)
        .where(eq(pushSubscriptions.userId, userId))) as [{ n: number }];
      const [existing] = await tx
        .select({ id: pushSubscriptions.id, userId: pushSubscriptions.userId })
        .from(pushSubscriptions)
        .where(eq(pushSubscriptions.endpoint, s.endpoint));
      if (!existing && n >= MAX_PUSH_SUBSCRIPTIONS)
        throw new DomainError('BAD_REQUEST', `at most ${MAX_PUSH_SUBSCRIPTIONS} push subscriptions`);
      // The same browser subscription re-registered (possibly by another login on that browser): it now belongs to this user.
      const id = existing?.id ?? randomUUID();
      await tx
        .insert(pushSubscriptions)
        .values({ id, userId, endpoint: s.endpoint, p256dh: s.keys.p256dh, auth: s.keys.auth })
        .onConflictDoUpdate({ target: pushSubscriptions.endpoint, set: { userId, p256dh: s.keys.p256dh, auth: s.keys.auth } });
      return { id };
    });
  }

  async unregisterPush(userId: string, endpoint: string) {
    const gone = await this.d.db
      .delete(pushSubscriptions)
      .where(and(eq(pushSubscriptions.userId, userId), eq(pushSubscriptions.endpoint, endpoint)))
      .returning({ id: pushSubscriptions.id });
    return { removed: gone.length > 0 };
  }

  async createWebhook(userId: string, url: string) {
    const checked = await checkUrl(url, this.d.allowPrivate);
    return this.d.db.transaction(async (tx) => {
      const [{ n }] = (await tx.select({ n: sql<number>`count(*)::int` }).from(webhooks).where(eq(webhooks.userId, userId))) as [
        { n: number },
      ];
      if (n >= MAX_WEBHOOKS) throw new DomainError('BAD_REQUEST', `at most ${MAX_WEBHOOKS} webhooks`);
      const id = randomUUID();
      const secret = newSecret();
      await tx.insert(webhooks).values({ id, userId, url: checked.toString(), secret });
      return { id, secret };
    });
  }

  async listWebhooks(userId: string) {
    const rows = await this.d.db
      .select({ id: webhooks.id, url: webhooks.url, createdAt: webhooks.createdAt })
      .from(webhooks)
      .where(eq(webhooks.userId, userId))
      .orderBy(webhooks.createdAt);
    const paused = await this.paused(rows.map((r) => r.id));
    return rows.map((r) => ({ ...r, createdAt: r.createdAt.toISOString(), pausedUntil: iso(paused.get(r.id)) }));
  }

  async deleteWebhook(userId: string, id: string) {
    const gone = await this.d.db
      .delete(webhooks)
      .where(and(eq(webhooks.userId, userId), eq(webhooks.id, id)))
      .returning({ id: webhooks.id });
    if (!gone.length) throw new DomainError('NOT_FOUND', 'no such webhook');
    return { id };
  }

  async rotateWebhookSecret(userId: string, id: string) {
    const secret = newSecret();
    const done = await this.d.db
      .update(webhooks)
      .set({ secret })
      .where(and(eq(webhooks.userId, userId), eq(webhooks.id, id)))
      .returning({ id: webhooks.id });
    if (!done.length) throw new DomainError('NOT_FOUND', 'no such webhook');
    return { id, secret };
  }

  /**
   * The caller's recent deliveries, newest first, permanent failures included. A delivery still
   * being sent whose endpoint failed repeatedly shows as `paused` until the pause ends.
   */
  async deliveries(userId: string, limit: number) {
    const d = notificationDeliveries;
    const rows = await this.d.db
      .select({
        id: d.id,
        channel: d.channel,
        target: d.target,
        conversationId: d.conversationId,
        range: d.rangeKey,
        status: d.status,
        attempts: d.attempts,
        error: d.error,
        createdAt: d.createdAt,
        finishedAt: d.finishedAt,
      })
      .from(d)
      .where(eq(d.userId, userId))
      .orderBy(desc(d.createdAt), desc(d.id))
      .limit(limit);
    const paused = await this.paused([
      ...new Set(rows.filter((r) => r.status === 'sending' && r.channel !== 'email').map((r) => r.target)),
    ]);
    return rows.map((r) => {
      const until = r.status === 'sending' ? paused.get(r.target) : undefined;
      return {
        ...r,
        status: until ? ('paused' as const) : r.status,
        pausedUntil: iso(until),
        createdAt: r.createdAt.toISOString(),
        finishedAt: r.finishedAt?.toISOString() ?? null,
      };
    });
  }
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
