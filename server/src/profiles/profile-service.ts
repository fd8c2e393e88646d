import { and, asc, eq, isNull, or, sql } from 'drizzle-orm';
import type { Db } from '../db/database.ts';
import { blocks, conversations, members, profiles, users } from '../../../db/schema/index.ts';
import { DomainError } from '../errors.ts';
import type { UserControl } from '../hub/ports.ts';

/** How a block reaches live sockets: a change every replica has applied when it resolves. */
export interface BlockChannel {
  controlUsers(userIds: string[], msg: UserControl): Promise<void>;
}

export interface PublicProfile {
  id: string;
  username: string;
  displayName: string;
  bio: string;
  avatarUrl: string | null;
  statusText: string;
  timezone: string;
  createdAt: string;
}

export type ProfileUpdate = Partial<Pick<PublicProfile, 'displayName' | 'bio' | 'avatarUrl' | 'statusText' | 'timezone'>>;

const profileColumns = {
  id: users.id,
  username: users.username,
  displayName: profiles.displayName,
  bio: profiles.bio,
  avatarUrl: profiles.avatarUrl,
  statusText: profiles.statusText,
  timezone: profiles.timezone,
  createdAt: users.createdAt,
};

type Row = {
  id: string;
  username: string;
  displayName: string;
  bio: string;
  avatarUrl: string | null;
  statusText: string;
  timezone: string;
  createdAt: Date;
};
const toPublic = (r: Row): PublicProfile => ({ ...r, createdAt: r.createdAt.toISOString() });

/** Escapes LIKE metacharacters so a search for `%` matches a literal percent sign. */
const likePrefix = (s: string) => s.toLowerCase().replace(/[\\%_]/g, (c) => '\\' + c) + '%';

/**
 * Profiles, search and blocks. A block between two users (either way) means: no new direct
 * conversation or group invitation between them, no new message, edit or reaction from either
 * in their direct conversation (its history stays), and nothing the blocked user sends anywhere
 * notifies the blocker (the notification trigger reads the blocks). Blocked users are also
 * hidden from the blocker's search. Shared groups are untouched: what the blocker sees of the
 * other there is the client's choice.
 */
export class ProfileService {
  constructor(
    private readonly db: Db,
    /** Without it (tools, tests) blocks are stored only; sockets learn them at their next login. */
    private readonly live?: BlockChannel,
  ) {}

  async get(by: { userId: string } | { username: string }): Promise<PublicProfile> {
    const where = 'userId' in by ? eq(users.id, by.userId) : sql`lower(${users.username}) = ${by.username.toLowerCase()}`;
    const [row] = await this.db
      .select(profileColumns)
      .from(users)
      .innerJoin(profiles, eq(profiles.userId, users.id))
      .where(and(where, isNull(users.deletedAt)));
    if (!row) throw new DomainError('NOT_FOUND', 'no such user');
    return toPublic(row);
  }

  async me(userId: string) {
    const [row] = await this.db
      .select({ ...profileColumns, email: users.email })
      .from(users)
      .innerJoin(profiles, eq(profiles.userId, users.id))
      .where(and(eq(users.id, userId), isNull(users.deletedAt)));
    if (!row) throw new DomainError('NOT_FOUND', 'no such user');
    return { ...toPublic(row), email: row.email };
  }

  async update(userId: string, patch: ProfileUpdate): Promise<PublicProfile> {
    const set: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(patch)) if (v !== undefined) set[k] = v;
    if (Object.keys(set).length) {
      await this.db
        .update(profiles)
        .set({ ...set, updatedAt: new Date() })
        .where(eq(profiles.userId, userId));
    }
    return this.get({ userId });
  }

  /** Prefix search on username or display name, case-insensitive; users who blocked the caller are hidden. */
  async search(callerId: string, query: string, limit: number): Promise<PublicProfile[]> {
    const p = likePrefix(query);
    const rows = await this.db
      .select(profileColumns)
      .from(users)
      .innerJoin(profiles, eq(profiles.userId, users.id))
      .where(
        and(
          isNull(users.deletedAt),
          or(sql`lower(${users.username}) like ${p} escape '\\'`, sql`lower(${profiles.displayName}) like ${p} escape '\\'`),
          sql`not exists (select 1 from ${blocks} where ${blocks.blockerId} = ${users.id} and ${blocks.blockedId} = ${callerId})`,
        ),
      )
      .orderBy(asc(sql`lower(${users.username})`))
      .limit(limit);
    return rows.map(toPublic);
  }

  /** Resolves once every replica's sockets of the two users act on the block. */
  async block(callerId: string, userId: string) {
    if (callerId === userId) throw new DomainError('BAD_REQUEST', 'cannot block yourself');
    await this.get({ userId });
    await this.db.insert(blocks).values({ blockerId: callerId, blockedId: userId }).onConflictDoNothing();
    await this.announce(callerId, userId);
  }

  /** Resolves once every replica's sockets of the two users act on what blocks remain. */
  async unblock(callerId: string, userId: string) {
    await this.db.delete(blocks).where(and(eq(blocks.blockerId, callerId), eq(blocks.blockedId, userId)));
    await this.announce(callerId, userId);
  }

  /** Tells both users' sockets the blocks between them now, with their direct and shared conversations. */
  private async announce(a: string, b: string) {
    if (!this.live) return;
    const m2 = sql`members m2`;
    const [blockers, direct, shared] = await Promise.all([
      this.db
        .select({ u: blocks.blockerId })
        .from(blocks)
        .where(or(and(eq(blocks.blockerId, a), eq(blocks.blockedId, b)), and(eq(blocks.blockerId, b), eq(blocks.blockedId, a)))),
      this.db
        .select({ id: conversations.id })
        .from(conversations)
        .where(eq(conversations.directKey, [a, b].sort().join(':'))),
      this.db
        .select({ c: members.conversationId })
        .from(members)
        .where(
          and(
            eq(members.userId, a),
            sql`exists (select 1 from ${m2} where m2.conversation_id = ${members.conversationId} and m2.user_id = ${b})`,
          ),
        ),
    ]);
    await this.live.controlUsers([a, b], {
      k: 'block',
      blockers: blockers.map((r) => r.u),
      conv: direct[0]?.id ?? null,
      shared: shared.map((r) => r.c),
    });
  }

  async blocked(callerId: string): Promise<PublicProfile[]> {
    const rows = await this.db
      .select(profileColumns)
      .from(blocks)
      .innerJoin(users, eq(users.id, blocks.blockedId))
      .innerJoin(profiles, eq(profiles.userId, users.id))
      .where(eq(blocks.blockerId, callerId))
      .orderBy(asc(users.username));
    return rows.map(toPublic);
  }

  /** True when either user blocked the other. */
  async eitherBlocked(a: string, b: string): Promise<boolean> {
    const rows = await this.db
      .select({ x: blocks.blockerId })
      .from(blocks)
      .where(or(and(eq(blocks.blockerId, a), eq(blocks.blockedId, b)), and(eq(blocks.blockerId, b), eq(blocks.blockedId, a))))
      .limit(1);
    return rows.length > 0;
  }
}
