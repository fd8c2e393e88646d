import { and, eq, sql } from 'drizzle-orm';
import {
  blocks,
  conversationNotify,
  conversations,
  members,
  notificationSettings,
  notifyCursors,
  profiles,
  users,
} from '../../../db/schema/index.ts';
import type { Db } from '../db/database.ts';
import type { MessageStore, StoredEvent } from '../store/message-store.ts';
import type { NotifyChannel } from './notify-jobs.ts';
import { quietUntil, type QuietHours } from './quiet-hours.ts';

/** What one conversation contributes to a notification, decided at send time from the database. */
export interface ConversationPlan {
  conv: string;
  /** Seqs covered: after the read cursor and what this channel already notified, up to the head. */
  fromSeq: number;
  toSeq: number;
  /** The cursor value the plan was made from (the claim checks nobody moved it meanwhile). */
  cursor: number;
  count: number;
  mentioned: boolean;
  title: string;
  /** The newest message's text, or null when previews are off. */
  body: string | null;
  /** For the digest: up to a few recent messages `{from, body}` (bodies null without previews). */
  recent: { from: string; body: string | null; ts: number }[];
}

export interface UserNotifyState {
  email: string | null;
  deleted: boolean;
  channelOn: Record<NotifyChannel, boolean>;
  previews: boolean;
  quietHours: QuietHours | null;
}

export type Skip = { skip: string };
export const isSkip = (p: unknown): p is Skip => typeof p === 'object' && p !== null && 'skip' in p;

const RECENT = 5;
const READ_LIMIT = 200;

/**
 * The re-check at send time: everything is read again from the database and the message store,
 * so a notification reflects what is true when it leaves (read on another device, deleted,
 * muted, level, quiet hours, channel off), never what was true when its job was queued.
 */
export class SendPlanner {
  constructor(private readonly d: { db: Db; store: MessageStore }) {}

  async user(userId: string): Promise<UserNotifyState | null> {
    const [r] = await this.d.db
      .select({
        email: users.email,
        deletedAt: users.deletedAt,
        push: notificationSettings.push,
        mail: notificationSettings.email,
        previews: notificationSettings.previews,
        qs: notificationSettings.quietStart,
        qe: notificationSettings.quietEnd,
        qt: notificationSettings.quietTz,
      })
      .from(users)
      .leftJoin(notificationSettings, eq(notificationSettings.userId, users.id))
      .where(eq(users.id, userId));
    if (!r) return null;
    return {
      email: r.email,
      deleted: r.deletedAt != null,
      channelOn: { push: r.push ?? true, email: r.mail ?? true, webhook: true },
      previews: r.previews ?? true,
      quietHours: r.qs ? { start: r.qs, end: r.qe!, timezone: r.qt! } : null,
    };
  }

  /** Quiet hours at `now`: the instant to postpone to, or null. */
  quietUntil(u: UserNotifyState, now: Date) {
    return quietUntil(now, u.quietHours);
  }

  /** The user's total unread over every conversation (the badge). */
  async totalUnread(userId: string): Promise<number> {
    const rows = await this.d.db
      .select({ conv: members.conversationId, read: members.readSeq })
      .from(members)
      .where(eq(members.userId, userId));
    if (!rows.length) return 0;
    const heads = await this.d.store.lastSeqs(rows.map((r) => r.conv));
    let n = 0;
    for (const r of rows) n += Math.max(0, (heads.get(r.conv) ?? 0) - r.read);
    return n;
  }

  /** Conversations with something this channel has not covered yet (for the email digest). */
  async pendingConversations(userId: string, channel: NotifyChannel): Promise<string[]> {
    const rows = await this.d.db
      .select({ conv: members.conversationId, read: members.readSeq, cursor: notifyCursors.seq })
      .from(members)
      .leftJoin(
        notifyCursors,
        and(
          eq(notifyCursors.userId, members.userId),
          eq(notifyCursors.conversationId, members.conversationId),
          eq(notifyCursors.channel, channel),
        ),
      )
      .where(eq(members.userId, userId));
    if (!rows.length) return [];
    const heads = await this.d.store.lastSeqs(rows.map((r) => r.conv));
    return rows.filter((r) => (heads.get(r.conv) ?? 0) > Math.max(r.read, r.cursor ?? 0)).map((r) => r.conv);
  }

  async conversation(
    userId: string,
    conv: string,
    channel: NotifyChannel,
    u: UserNotifyState,
    now: Date,
  ): Promise<ConversationPlan | Skip> {
    const [m] = await this.d.db
      .select({
        read: members.readSeq,
        mutedUntil: members.mutedUntil,
        level: conversationNotify.level,
        cursor: notifyCursors.seq,
        kind: conversations.kind,
        title: conversations.title,
      })
      .from(members)
      .innerJoin(conversations, eq(conversations.id, members.conversationId))
      .leftJoin(
        conversationNotify,
        and(eq(conversationNotify.userId, members.userId), eq(conversationNotify.conversationId, members.conversationId)),
      )
      .leftJoin(
        notifyCursors,
        and(
          eq(notifyCursors.userId, members.userId),
          eq(notifyCursors.conversationId, members.conversationId),
          eq(notifyCursors.channel, channel),
        ),
      )
      .where(and(eq(members.userId, userId), eq(members.conversationId, conv)));
    if (!m) return { skip: 'not a member' };
    const level = m.level ?? 'all';
    if (level === 'none') return { skip: 'level none' };
    if (m.mutedUntil && m.mutedUntil.getTime() > now.getTime()) return { skip: 'muted' };
    const cursor = m.cursor ?? 0;
    const head = (await this.d.store.lastSeqs([conv])).get(conv) ?? 0;
    const after = Math.max(m.read, cursor);
    if (head <= after) return { skip: m.read >= head ? 'read' : 'already notified' };
    const events =
      head - after > READ_LIMIT
        ? await this.d.store.read(conv, { beforeSeq: head + 1, limit: READ_LIMIT })
        : await this.d.store.read(conv, { afterSeq: after, beforeSeq: head + 1, limit: READ_LIMIT });
    // What someone this user blocked wrote is never in their notifications, even when another
    // member's message is what triggered one.
    const blocked = new Set(
      (await this.d.db.select({ id: blocks.blockedId }).from(blocks).where(eq(blocks.blockerId, userId))).map((r) => r.id),
    );
    const live = new Map<number, StoredEvent>();
    let mentioned = false;
    let count = 0;
    const edits: StoredEvent[] = [];
    for (const e of events) {
      if (e.seq <= after || e.from === userId || (e.from && blocked.has(e.from))) continue;
      if (e.kind === 'message' && !e.data.redacted) {
        live.set(e.seq, e);
        count++;
        if (mentions(e, userId)) mentioned = true;
      } else if (e.kind === 'edit') edits.push(e);
    }
    // An edit that adds a mention of this user notifies (once: its seq is in the range).
    for (const e of edits) {
      const target = Number(e.data.target);
      if (!mentions(e, userId)) {
        const t = live.get(target);
        if (t && typeof e.data.body === 'string') live.set(target, { ...t, data: { ...t.data, body: e.data.body } });
        continue;
      }
      const original = live.get(target) ?? (await this.d.store.read(conv, { afterSeq: target - 1, limit: 1 }))[0];
      if (!original || original.seq !== target || original.data.redacted) continue;
      if (!mentions(original, userId)) {
        mentioned = true;
        if (!live.has(target)) count++;
      }
      live.set(target, { ...original, seq: target, data: { ...original.data, body: e.data.body, mentions: e.data.mentions } });
    }
    if (count === 0) return { skip: 'nothing left to notify (deleted or own)' };
    if (level === 'mentions' && !mentioned) return { skip: 'mentions only' };
    const recentEvents = [...live.values()].sort((a, b) => a.ts - b.ts || a.seq - b.seq).slice(-RECENT);
    const names = await this.names(recentEvents.map((e) => e.from!).filter(Boolean));
    const newest = recentEvents[recentEvents.length - 1]!;
    const sender = names.get(newest.from!) ?? 'Someone';
    const title = m.kind === 'group' && m.title ? `${sender} in ${m.title}` : sender;
    return {
      conv,
      fromSeq: after + 1,
      toSeq: head,
      cursor,
      count,
      mentioned,
      title,
      body: u.previews ? String(newest.data.body ?? '') : null,
      recent: recentEvents.map((e) => ({
        from: names.get(e.from!) ?? 'Someone',
        body: u.previews ? String(e.data.body ?? '') : null,
        ts: e.ts,
      })),
    };
  }

  private async names(ids: string[]) {
    const uniq = [...new Set(ids)];
    if (!uniq.length) return new Map<string, string>();
    const rows = await this.d.db
      .select({ id: profiles.userId, name: profiles.displayName })
      .from(profiles)
      .where(
        sql`${profiles.userId} in (${sql.join(
          uniq.map((u) => sql`${u}`),
          sql`, `,
        )})`,
      );
    return new Map(rows.map((r) => [r.id, r.name]));
  }
}

function mentions(e: StoredEvent, userId: string) {
  const m = e.data.mentions;
  return Array.isArray(m) && m.includes(userId);
}
