import { asc, eq, sql } from 'drizzle-orm';
import { conversations, members, pastMembers, profiles } from '../../../db/schema/index.ts';
import type { Database, Db } from '../db/database.ts';
import { DomainError } from '../errors.ts';
import type { DirectBlock, MembershipDirectory } from '../hub/ports.ts';
import type { ConversationSummary } from '../protocol/frames.ts';

// Prepared once per connection: every resume asks for its cursors. The resumes of one event-loop
// turn (a reconnect storm brings thousands) share one statement; the (user, conversation) pairs
// travel as one json text parameter so the statement text is the same whatever their number.
// A lateral with a LIMIT (the pair is the key, so one row at most), which PostgreSQL cannot
// flatten: one key lookup per pair. As a plain join it hashed over a scan of all members.
export const READ_CURSORS_SQL = `select m.user_id, m.conversation_id, m.read_seq
  from jsonb_to_recordset($1::text::jsonb) as q(u uuid, c uuid)
  cross join lateral (
    select m.user_id, m.conversation_id, m.read_seq from members m
    where m.conversation_id = q.c and m.user_id = q.u
    limit 1) m`;
/** A read receipt (every `read` frame): moves the cursor forward only. Prepared once. */
const MARK_READ_SQL = `update members set read_seq = $3::bigint
  where conversation_id = $1 and user_id = $2 and read_seq < $3::bigint
  returning read_seq`;
/**
 * Which of the asked conversations ($2, a json array) the user ($1) belongs to, and for a direct
 * one whether either of the two blocked the other ('mine': the user did). Asked only when a
 * socket names a conversation it does not know.
 */
export const ACCESS_SQL = `select m.conversation_id, d.blocked
  from jsonb_array_elements_text($2::text::jsonb) as q(conv)
  cross join lateral (
    select m.conversation_id from members m where m.conversation_id = q.conv::uuid and m.user_id = $1 limit 1) m
  cross join lateral (
    select c.kind from conversations c where c.id = m.conversation_id limit 1) c
  left join lateral (
    select case when bool_or(b.blocker_id = $1) then 'mine' else 'theirs' end as blocked
    from members o
    cross join lateral (
      select b.blocker_id from blocks b
      where (b.blocker_id = $1 and b.blocked_id = o.user_id) or (b.blocker_id = o.user_id and b.blocked_id = $1)) b
    where c.kind = 'direct' and o.conversation_id = m.conversation_id and o.user_id <> $1
    having count(*) > 0) d on true`;
/** Which of the sessions ($2, a json array) of the user ($1) are not revoked. */
const LIVE_SESSIONS_SQL = `select s.id from sessions s
  where s.user_id = $1 and s.revoked_at is null and s.id in (select jsonb_array_elements_text($2::text::jsonb)::uuid)`;
/** Most (user, conversation) pairs in one cursor read. */
const READ_CURSORS_BATCH = 1000;

interface CursorAsk {
  userId: string;
  convs: string[];
  resolve: (v: Record<string, number>) => void;
  reject: (e: unknown) => void;
}

/**
 * What the hub asks about memberships on the socket path: a user's conversations at login, a
 * conversation a socket names without knowing it, read receipts and the cursors a resume answers
 * with. Prepared statements, and cursor reads batched per loop turn (a reconnect storm asks
 * thousands at once).
 */
export class ConversationDirectory implements MembershipDirectory {
  private cursorAsks: CursorAsk[] = [];

  constructor(
    private readonly database: Pick<Database, 'query'>,
    private readonly db: Db,
  ) {}

  async conversationsOf(userId: string): Promise<string[]> {
    const rows = await this.db.select({ id: members.conversationId }).from(members).where(eq(members.userId, userId));
    return rows.map((r) => r.id);
  }

  /** The groups the user left or was removed from (account erasure reaches them too). */
  async pastConversationsOf(userId: string): Promise<string[]> {
    const rows = await this.db.select({ id: pastMembers.conversationId }).from(pastMembers).where(eq(pastMembers.userId, userId));
    return rows.map((r) => r.id);
  }

  async access(userId: string, convs: string[]): Promise<Map<string, { blocked?: DirectBlock }>> {
    const out = new Map<string, { blocked?: DirectBlock }>();
    if (!convs.length) return out;
    const rows = await this.database.query<{ conversation_id: string; blocked: DirectBlock | null }>(ACCESS_SQL, [
      userId,
      JSON.stringify(convs),
    ]);
    for (const r of rows) out.set(r.conversation_id, r.blocked ? { blocked: r.blocked } : {});
    return out;
  }

  async liveSessions(userId: string, sessionIds: string[]): Promise<Set<string>> {
    const rows = await this.database.query<{ id: string }>(LIVE_SESSIONS_SQL, [userId, JSON.stringify(sessionIds)]);
    return new Set(rows.map((r) => r.id));
  }

  /** The conversation as frames and the API show it: kind, title, topic, members with roles. */
  async summary(conv: string): Promise<ConversationSummary> {
    const [c] = await this.db.select().from(conversations).where(eq(conversations.id, conv));
    if (!c) throw new DomainError('NOT_FOUND', 'no such conversation');
    const ms = await this.db
      .select({ userId: members.userId, role: members.role })
      .from(members)
      .innerJoin(profiles, eq(profiles.userId, members.userId))
      .where(eq(members.conversationId, conv))
      .orderBy(asc(members.joinedAt), sql`case ${members.role} when 'owner' then 0 when 'admin' then 1 else 2 end`, asc(members.userId));
    return { id: c.id, kind: c.kind, title: c.title, topic: c.topic, members: ms, createdAt: c.createdAt.toISOString() };
  }

  async markRead(conv: string, userId: string, seq: number): Promise<number | null> {
    const rows = await this.database.query<{ read_seq: string | number }>(MARK_READ_SQL, [conv, userId, seq]);
    return rows[0] ? Number(rows[0].read_seq) : null;
  }

  readCursors(userId: string, convs: string[]): Promise<Record<string, number>> {
    if (!convs.length) return Promise.resolve({});
    return new Promise((resolve, reject) => {
      if (this.cursorAsks.push({ userId, convs, resolve, reject }) === 1) setImmediate(() => this.readCursorBatches());
    });
  }

  /** Answers every cursor read asked in the last loop turn, in statements of up to 1000 pairs. */
  private readCursorBatches() {
    const asks = this.cursorAsks;
    this.cursorAsks = [];
    for (let i = 0; i < asks.length; ) {
      const batch: CursorAsk[] = [];
      let pairs = 0;
      while (i < asks.length && (batch.length === 0 || pairs + asks[i]!.convs.length <= READ_CURSORS_BATCH)) {
        pairs += asks[i]!.convs.length;
        batch.push(asks[i++]!);
      }
      const param = JSON.stringify(batch.flatMap((a) => a.convs.map((c) => ({ u: a.userId, c }))));
      this.database
        .query<{ user_id: string; conversation_id: string; read_seq: string | number }>(READ_CURSORS_SQL, [param])
        .then((rows) => {
          const byUser = new Map<string, Map<string, number>>();
          for (const r of rows) {
            let m = byUser.get(r.user_id);
            if (!m) byUser.set(r.user_id, (m = new Map()));
            m.set(r.conversation_id, Number(r.read_seq));
          }
          for (const a of batch) {
            const out: Record<string, number> = {};
            const m = byUser.get(a.userId);
            for (const c of a.convs) {
              const v = m?.get(c);
              if (v !== undefined) out[c] = v;
            }
            a.resolve(out);
          }
        })
        .catch((err) => {
          for (const a of batch) a.reject(err);
        });
    }
  }
}
