import { eq, or } from 'drizzle-orm';
import type { Db } from '../db/database.ts';
import { authAudit, blocks, credentials, members, pastMembers, profiles, sessions, users } from '../../../db/schema/index.ts';
import { eraseNotifications, exportNotifications } from '../notify/notification-data.ts';
import type { AuthService, AuthedUser, RequestMeta } from '../auth/auth-service.ts';
import type { ConversationService } from '../conversations/conversation-service.ts';
import { DomainError } from '../errors.ts';
import { eventFrame } from '../hub/wire.ts';
import type { ProfileService } from '../profiles/profile-service.ts';
import type { MessageStore } from '../store/message-store.ts';

/** Data portability and erasure: `account.export` and `account.delete`. */
export class AccountService {
  constructor(
    private readonly d: {
      db: Db;
      auth: AuthService;
      profiles: ProfileService;
      conversations: ConversationService;
      store: MessageStore;
      /** The ledger's part of an export and an erasure. */
      payments?: { exportOf(userId: string): Promise<unknown>; detach(userId: string): Promise<void> };
      /** The search index's part of an erasure: after the user row is marked deleted, so the indexer skips the rest. */
      search?: { eraseSender(userId: string): Promise<void> };
      /** The user's files: listed (with links) in an export, deleted with their bytes on erasure. */
      attachments?: { exportOf(userId: string): Promise<unknown[]>; erase(userId: string): Promise<unknown> };
    },
  ) {}

  async export(userId: string) {
    const db = this.d.db;
    const [me, sessionRows, blockRows, audit, convs] = await Promise.all([
      this.d.profiles.me(userId),
      db
        .select({
          id: sessions.id,
          createdAt: sessions.createdAt,
          lastUsedAt: sessions.lastUsedAt,
          revokedAt: sessions.revokedAt,
          userAgent: sessions.userAgent,
          ip: sessions.ip,
        })
        .from(sessions)
        .where(eq(sessions.userId, userId)),
      db.select({ userId: blocks.blockedId, at: blocks.createdAt }).from(blocks).where(eq(blocks.blockerId, userId)),
      db.select({ event: authAudit.event, at: authAudit.at, ip: authAudit.ip }).from(authAudit).where(eq(authAudit.userId, userId)),
      this.d.conversations.list(userId),
    ]);
    const payments = await this.d.payments?.exportOf(userId);
    const files = await this.d.attachments?.exportOf(userId);
    const messages = [];
    for (const c of convs) {
      const seqs = new Set(await this.d.store.seqsBySender(c.id, userId));
      if (!seqs.size) continue;
      for (let after = 0; ; ) {
        const page = await this.d.store.read(c.id, { afterSeq: after, limit: 1000 });
        if (!page.length) break;
        for (const e of page) if (seqs.has(e.seq)) messages.push(eventFrame(e));
        after = page[page.length - 1]!.seq;
      }
    }
    return {
      exportedAt: new Date().toISOString(),
      profile: me,
      sessions: sessionRows,
      blocked: blockRows,
      authEvents: audit,
      conversations: convs.map(({ lastMessage: _omit, ...c }) => c),
      messages,
      ...(payments ? { payments } : {}),
      ...(files ? { attachments: files } : {}),
      notifications: await exportNotifications(db, userId),
    };
  }

  /**
   * Erases personal data: the text of every event the user wrote (message and edit bodies, notes)
   * is redacted in every conversation they are or were in, memberships, credentials and blocks
   * removed, identity fields replaced, every session revoked (which closes the user's sockets).
   * The user row stays as a tombstone so events keep a sender id.
   */
  async delete(user: AuthedUser, password: string, meta: RequestMeta) {
    if (!(await this.d.auth.verifyPassword(user.id, password))) throw new DomainError('UNAUTHORIZED', 'password is wrong');
    const directory = this.d.conversations.directory;
    const convs = new Set([...(await directory.conversationsOf(user.id)), ...(await directory.pastConversationsOf(user.id))]);
    for (const c of convs) {
      await this.d.store.redact(c, await this.d.store.seqsBySender(c, user.id));
    }
    await this.d.attachments?.erase(user.id);
    await this.d.auth.revokeSessions(user.id, 'all', 'account_deleted');
    const tomb = user.id.replace(/-/g, '').slice(0, 24);
    await this.d.db.transaction(async (tx) => {
      await tx.delete(members).where(eq(members.userId, user.id));
      await tx.delete(pastMembers).where(eq(pastMembers.userId, user.id));
      await tx.delete(credentials).where(eq(credentials.userId, user.id));
      await tx.delete(blocks).where(or(eq(blocks.blockerId, user.id), eq(blocks.blockedId, user.id)));
      await eraseNotifications(tx, user.id);
      await tx
        .update(profiles)
        .set({ displayName: 'Deleted user', bio: '', avatarUrl: null, statusText: '', updatedAt: new Date() })
        .where(eq(profiles.userId, user.id));
      await tx
        .update(users)
        .set({ email: `deleted-${tomb}@invalid`, username: `deleted_${tomb}`, deletedAt: new Date() })
        .where(eq(users.id, user.id));
      await tx.update(sessions).set({ ip: null, userAgent: null }).where(eq(sessions.userId, user.id));
    });
    await this.d.search?.eraseSender(user.id);
    // Ledger rows are financial records and stay, detached from what identified the user.
    await this.d.payments?.detach(user.id);
    await this.d.auth.audit(user.id, 'account_deleted', { ip: meta.ip });
  }
}
