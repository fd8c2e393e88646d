import { randomUUID } from 'node:crypto';
import { and, asc, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { Database, Db } from '../db/database.ts';
import { conversations, members, pastMembers, users } from '../../../db/schema/index.ts';
import { DomainError } from '../errors.ts';
import type { UserControl } from '../hub/ports.ts';
import { ConversationDirectory } from './conversation-directory.ts';
import type { ProfileService } from '../profiles/profile-service.ts';
import type { ConversationSummary } from '../protocol/frames.ts';
import { encode, eventFrame } from '../hub/wire.ts';
import type { AppendResult, EventDraft, MessageStore } from '../store/message-store.ts';

type Role = 'owner' | 'admin' | 'member';

/** How the service reaches live sockets: the hub's writer and control channels. */
export interface LiveChannel {
  write(conv: string, draft: EventDraft): Promise<AppendResult>;
  /** A membership change to these users' sockets; resolves once every replica applied it. */
  controlUsers(userIds: string[], msg: UserControl): Promise<void>;
  publishFrame(conv: string, frame: string, skipUser?: string): Promise<void>;
}

export interface ConversationServiceDeps {
  db: Db;
  /** Prepared statements for the socket path (resume). */
  database: Pick<Database, 'query'>;
  store: MessageStore;
  live: LiveChannel;
  profiles: ProfileService;
  maxGroupMembers: number;
  /** The caller's plan limits on group size and history depth; `maxGroupMembers` and no depth limit without it. */
  limitsOf?: (userId: string) => Promise<{ groupMembers: number; historyDepth: number }>;
  historyMaxLimit?: number;
}

/** The check in front of every conversation call: prepared once, not built per call. */
const MEMBER_ROLE_SQL = `select c.kind, m.role from conversations c
  left join members m on m.conversation_id = c.id and m.user_id = $2
  where c.id = $1`;
const FOREVER = new Date('9999-12-31T00:00:00Z');

export class ConversationService {
  /** The hub's port onto memberships and read cursors (the socket path's statements). */
  readonly directory: ConversationDirectory;

  constructor(private readonly d: ConversationServiceDeps) {
    this.directory = new ConversationDirectory(d.database, d.db);
  }

  // ---- procedures ------------------------------------------------------------------------

  async createDirect(caller: string, other: string): Promise<ConversationSummary> {
    if (caller === other) throw new DomainError('BAD_REQUEST', 'cannot start a conversation with yourself');
    await this.d.profiles.get({ userId: other });
    if (await this.d.profiles.eitherBlocked(caller, other)) throw new DomainError('FORBIDDEN', 'this user cannot be messaged');
    const directKey = [caller, other].sort().join(':');
    const id = randomUUID();
    const created = await this.d.db.transaction(async (tx) => {
      const ins = await tx
        .insert(conversations)
        .values({ id, kind: 'direct', directKey, createdBy: caller })
        .onConflictDoNothing({ target: conversations.directKey })
        .returning({ id: conversations.id });
      if (!ins.length) return null;
      await tx.insert(members).values([
        { conversationId: id, userId: caller, role: 'member' },
        { conversationId: id, userId: other, role: 'member' },
      ]);
      return id;
    });
    if (!created) {
      const [row] = await this.d.db.select({ id: conversations.id }).from(conversations).where(eq(conversations.directKey, directKey));
      return this.summary(row!.id);
    }
    return this.announceJoin(id, caller, [caller, other]);
  }

  async createGroup(caller: string, title: string, memberIds: string[]): Promise<ConversationSummary> {
    const others = [...new Set(memberIds)].filter((u) => u !== caller);
    const maxMembers = await this.maxGroupMembersOf(caller);
    if (others.length + 1 > maxMembers) {
      throw new DomainError('BAD_REQUEST', `a group has at most ${maxMembers} members`);
    }
    await this.checkInvitable(caller, others);
    const id = randomUUID();
    await this.d.db.transaction(async (tx) => {
      await tx.insert(conversations).values({ id, kind: 'group', title, createdBy: caller });
      await tx
        .insert(members)
        .values([
          { conversationId: id, userId: caller, role: 'owner' as Role },
          ...others.map((u) => ({ conversationId: id, userId: u, role: 'member' as Role })),
        ]);
    });
    return this.announceJoin(id, caller, [caller, ...others]);
  }

  async addMembers(caller: string, conv: string, userIds: string[]): Promise<ConversationSummary> {
    const me = await this.requireMember(conv, caller);
    if (me.kind !== 'group') throw new DomainError('BAD_REQUEST', 'members can be added to groups only');
    if (me.role === 'member') throw new DomainError('FORBIDDEN', 'only owners and admins add members');
    const current = new Set(await this.memberIds(conv));
    const fresh = [...new Set(userIds)].filter((u) => !current.has(u));
    const maxMembers = await this.maxGroupMembersOf(caller);
    if (current.size + fresh.length > maxMembers) {
      throw new DomainError('BAD_REQUEST', `a group has at most ${maxMembers} members`);
    }
    if (!fresh.length) return this.summary(conv);
    await this.checkInvitable(caller, fresh);
    await this.d.db
      .insert(members)
      .values(fresh.map((u) => ({ conversationId: conv, userId: u, role: 'member' as Role })))
      .onConflictDoNothing();
    const summary = await this.announceJoin(conv, caller, fresh);
    await this.d.live.publishFrame(conv, encode({ type: 'conversation', op: 'updated', conversation: summary }));
    return summary;
  }

  async removeMember(caller: string, conv: string, userId: string): Promise<ConversationSummary> {
    if (userId === caller) return this.leave(caller, conv);
    const me = await this.requireMember(conv, caller);
    if (me.kind !== 'group') throw new DomainError('BAD_REQUEST', 'members can be removed from groups only');
    const [target] = await this.d.db
      .select({ role: members.role })
      .from(members)
      .where(and(eq(members.conversationId, conv), eq(members.userId, userId)));
    if (!target) throw new DomainError('NOT_FOUND', 'not a member');
    const canRemove = me.role === 'owner' || (me.role === 'admin' && target.role === 'member');
    if (!canRemove) throw new DomainError('FORBIDDEN', 'not allowed to remove this member');
    return this.depart(conv, caller, userId, 'removed');
  }

  async leave(caller: string, conv: string): Promise<ConversationSummary> {
    const me = await this.requireMember(conv, caller);
    if (me.kind !== 'group') throw new DomainError('BAD_REQUEST', 'a direct conversation cannot be left');
    return this.depart(conv, caller, caller, 'left');
  }

  async update(caller: string, conv: string, patch: { title?: string; topic?: string }): Promise<ConversationSummary> {
    const me = await this.requireMember(conv, caller);
    if (me.kind !== 'group') throw new DomainError('BAD_REQUEST', 'direct conversations have no title');
    if (me.role === 'member') throw new DomainError('FORBIDDEN', 'only owners and admins edit the conversation');
    const set: { title?: string; topic?: string } = {};
    if (patch.title !== undefined) set.title = patch.title;
    if (patch.topic !== undefined) set.topic = patch.topic;
    if (!Object.keys(set).length) return this.summary(conv);
    await this.d.db.update(conversations).set(set).where(eq(conversations.id, conv));
    await this.d.live.write(conv, {
      id: randomUUID(),
      kind: 'system',
      from: caller,
      ts: Date.now(),
      data: { text: 'conversation updated', ...set },
    });
    const summary = await this.summary(conv);
    await this.d.live.publishFrame(conv, encode({ type: 'conversation', op: 'updated', conversation: summary }));
    return summary;
  }

  async setRole(caller: string, conv: string, userId: string, role: 'admin' | 'member') {
    const me = await this.requireMember(conv, caller);
    if (me.role !== 'owner') throw new DomainError('FORBIDDEN', 'only the owner changes roles');
    const rows = await this.d.db
      .update(members)
      .set({ role })
      .where(and(eq(members.conversationId, conv), eq(members.userId, userId), sql`${members.role} <> 'owner'`))
      .returning({ u: members.userId });
    if (!rows.length) throw new DomainError('NOT_FOUND', 'not a member');
    return this.summary(conv);
  }

  async list(caller: string) {
    const rows = await this.d.db
      .select({
        id: conversations.id,
        kind: conversations.kind,
        title: conversations.title,
        topic: conversations.topic,
        createdAt: conversations.createdAt,
        role: members.role,
        readSeq: members.readSeq,
        mutedUntil: members.mutedUntil,
      })
      .from(members)
      .innerJoin(conversations, eq(conversations.id, members.conversationId))
      .where(eq(members.userId, caller));
    const ids = rows.map((r) => r.id);
    const [heads, lasts, memberRows] = await Promise.all([
      this.d.store.lastSeqs(ids),
      this.d.store.lastMessages(ids),
      ids.length
        ? this.d.db
            .select({ c: members.conversationId, u: members.userId, role: members.role })
            .from(members)
            .where(inArray(members.conversationId, ids))
        : Promise.resolve([]),
    ]);
    const byConv = new Map<string, ConversationSummary['members']>();
    for (const m of memberRows) {
      let l = byConv.get(m.c);
      if (!l) byConv.set(m.c, (l = []));
      l.push({ userId: m.u, role: m.role });
    }
    const now = Date.now();
    const out = rows.map((r) => {
      const lastSeq = heads.get(r.id) ?? 0;
      const last = lasts.get(r.id);
      return {
        id: r.id,
        kind: r.kind,
        title: r.title,
        topic: r.topic,
        createdAt: r.createdAt.toISOString(),
        role: r.role,
        members: byConv.get(r.id) ?? [],
        lastSeq,
        readSeq: Number(r.readSeq),
        unread: Math.max(0, lastSeq - Number(r.readSeq)),
        muted: r.mutedUntil != null && r.mutedUntil.getTime() > now,
        mutedUntil: r.mutedUntil?.toISOString() ?? null,
        lastMessage: last ? eventFrame(last) : null,
      };
    });
    out.sort((a, b) => (b.lastMessage?.ts ?? Date.parse(b.createdAt)) - (a.lastMessage?.ts ?? Date.parse(a.createdAt)));
    return out;
  }

  async get(caller: string, conv: string) {
    await this.requireMember(conv, caller);
    return this.summary(conv);
  }

  /**
   * A page of the log: the newest events, or those before/after a seq, or (`aroundSeq`, to open
   * a conversation at a search hit) half the limit before it and the event itself and the rest
   * after it (near an end of the log, more of the other side).
   */
  async history(caller: string, conv: string, q: { beforeSeq?: number; afterSeq?: number; aroundSeq?: number; limit: number }) {
    await this.requireMember(conv, caller);
    const read = async () => {
      if (q.aroundSeq != null) {
        // Half before and half after; near either end of the log, the other side fills the page.
        const [older, newer] = await Promise.all([
          this.d.store.read(conv, { beforeSeq: q.aroundSeq, limit: q.limit }),
          this.d.store.read(conv, { afterSeq: q.aroundSeq - 1, limit: q.limit }),
        ]);
        const before = Math.min(older.length, Math.max(Math.floor(q.limit / 2), q.limit - newer.length));
        return [...older.slice(older.length - before), ...newer.slice(0, q.limit - before)];
      }
      const range = q.afterSeq == null && q.beforeSeq == null ? { beforeSeq: Number.MAX_SAFE_INTEGER, limit: q.limit } : { ...q };
      return this.d.store.read(conv, range);
    };
    const [events, heads, limits] = await Promise.all([read(), this.d.store.heads([conv]), this.d.limitsOf?.(caller)]);
    const head = heads.get(conv) ?? { seq: 0, epoch: 1 };
    const lastSeq = head.seq;
    // The plan's history depth: only the newest `historyDepth` events can be read.
    const oldest = limits ? lastSeq - limits.historyDepth : 0;
    // The epoch says which log these seqs belong to: a page from another epoch than the client's
    // position is a rewound log (see the `rewound` frame).
    return { events: (oldest > 0 ? events.filter((e) => e.seq > oldest) : events).map(eventFrame), lastSeq, epoch: head.epoch };
  }

  /** Every member's read cursor in one conversation (for "seen by" receipts). */
  async memberCursors(caller: string, conv: string): Promise<Record<string, number>> {
    await this.requireMember(conv, caller);
    const rows = await this.d.db.select({ u: members.userId, r: members.readSeq }).from(members).where(eq(members.conversationId, conv));
    return Object.fromEntries(rows.map((r) => [r.u, Number(r.r)]));
  }

  async markReadChecked(caller: string, conv: string, seq: number) {
    await this.requireMember(conv, caller);
    const head = (await this.d.store.lastSeqs([conv])).get(conv) ?? 0;
    const moved = await this.directory.markRead(conv, caller, Math.min(seq, head));
    if (moved != null) await this.d.live.publishFrame(conv, encode({ type: 'read', conv, user: caller, seq: moved }));
    const [row] = await this.d.db
      .select({ r: members.readSeq })
      .from(members)
      .where(and(eq(members.conversationId, conv), eq(members.userId, caller)));
    const readSeq = Number(row?.r ?? 0);
    return { readSeq, unread: Math.max(0, head - readSeq) };
  }

  async mute(caller: string, conv: string, until: Date | null | undefined) {
    await this.requireMember(conv, caller);
    const mutedUntil = until === undefined ? FOREVER : until;
    await this.d.db
      .update(members)
      .set({ mutedUntil })
      .where(and(eq(members.conversationId, conv), eq(members.userId, caller)));
    return { muted: mutedUntil != null && mutedUntil.getTime() > Date.now(), mutedUntil: mutedUntil?.toISOString() ?? null };
  }

  // ---- helpers ---------------------------------------------------------------------------

  private async maxGroupMembersOf(userId: string) {
    return this.d.limitsOf ? (await this.d.limitsOf(userId)).groupMembers : this.d.maxGroupMembers;
  }

  private async requireMember(conv: string, userId: string) {
    const [row] = await this.d.database.query<{ kind: (typeof conversations.$inferSelect)['kind']; role: Role | null }>(MEMBER_ROLE_SQL, [
      conv,
      userId,
    ]);
    if (!row) throw new DomainError('NOT_FOUND', 'no such conversation');
    if (!row.role) throw new DomainError('FORBIDDEN', 'not a member of this conversation');
    return { kind: row.kind, role: row.role };
  }

  private async memberIds(conv: string) {
    const rows = await this.d.db.select({ u: members.userId }).from(members).where(eq(members.conversationId, conv));
    return rows.map((r) => r.u);
  }

  /** Every invitee exists and neither side blocked the other. */
  private async checkInvitable(caller: string, userIds: string[]) {
    if (!userIds.length) return;
    const found = await this.d.db
      .select({ id: users.id })
      .from(users)
      .where(and(inArray(users.id, userIds), isNull(users.deletedAt)));
    if (found.length !== userIds.length) throw new DomainError('NOT_FOUND', 'unknown user in the member list');
    for (const u of userIds) {
      if (await this.d.profiles.eitherBlocked(caller, u)) throw new DomainError('FORBIDDEN', 'a user in the list cannot be added');
    }
  }

  summary(conv: string): Promise<ConversationSummary> {
    return this.directory.summary(conv);
  }

  /**
   * Appends the `member joined` event and tells the joiners' sockets to start receiving; returns
   * once every replica has joined their sockets (the caller may use the conversation at once).
   */
  private async announceJoin(conv: string, actor: string, joined: string[]) {
    const { event } = await this.d.live.write(conv, {
      id: randomUUID(),
      kind: 'member',
      from: actor,
      ts: Date.now(),
      data: { op: 'joined', users: joined },
    });
    const summary = await this.summary(conv);
    const frame = encode({ type: 'conversation', op: 'added', conversation: summary });
    await this.d.live.controlUsers(joined, { k: 'added', conv, fromSeq: event.seq - 1, frame });
    return summary;
  }

  /**
   * The member event is appended while the user is still a member, so their sockets see it.
   * Returns once every replica has taken the conversation from the user's sockets.
   */
  private async depart(conv: string, actor: string, userId: string, op: 'left' | 'removed') {
    await this.d.live.write(conv, { id: randomUUID(), kind: 'member', from: actor, ts: Date.now(), data: { op, users: [userId] } });
    await this.d.db.transaction(async (tx) => {
      const [gone] = await tx
        .delete(members)
        .where(and(eq(members.conversationId, conv), eq(members.userId, userId)))
        .returning({ role: members.role });
      if (gone) {
        await tx
          .insert(pastMembers)
          .values({ userId, conversationId: conv })
          .onConflictDoUpdate({ target: [pastMembers.userId, pastMembers.conversationId], set: { leftAt: new Date() } });
      }
      if (gone?.role === 'owner') {
        // The longest-standing remaining member inherits the group.
        const [heir] = await tx
          .select({ u: members.userId })
          .from(members)
          .where(eq(members.conversationId, conv))
          .orderBy(sql`case ${members.role} when 'admin' then 0 else 1 end`, asc(members.joinedAt))
          .limit(1);
        if (heir)
          await tx
            .update(members)
            .set({ role: 'owner' })
            .where(and(eq(members.conversationId, conv), eq(members.userId, heir.u)));
      }
    });
    const summary = await this.summary(conv);
    await this.d.live.controlUsers([userId], {
      k: 'removed',
      conv,
      frame: encode({ type: 'conversation', op: 'removed', conversation: summary }),
    });
    await this.d.live.publishFrame(conv, encode({ type: 'conversation', op: 'updated', conversation: summary }));
    return summary;
  }
}
