import { and, asc, desc, eq, inArray, lt, sql } from 'drizzle-orm';
import type { Db } from '../db/database.ts';
import { paymentAccounts, paymentPostings, paymentTransfers } from '../../../db/schema/index.ts';

export interface LedgerDeps {
  db: Db;
  currency: string;
}

export interface Balances {
  balance: number;
  debt: number;
}

/** What the ledger reads for users: balances, history pages, every posting (export). Ledger extends it. */
export class LedgerQueries {
  constructor(protected readonly d: LedgerDeps) {}

  get currency() {
    return this.d.currency;
  }

  async balances(userId: string): Promise<Balances> {
    const rows = await this.d.db
      .select({ kind: paymentAccounts.kind, balance: paymentAccounts.balance })
      .from(paymentAccounts)
      .where(and(eq(paymentAccounts.userId, userId), eq(paymentAccounts.currency, this.d.currency)));
    let balance = 0;
    let debt = 0;
    for (const r of rows) {
      if (r.kind === 'wallet') balance = Number(r.balance);
      else if (r.kind === 'debt') debt = Number(r.balance) === 0 ? 0 : -Number(r.balance);
    }
    return { balance, debt };
  }

  /**
   * Every transfer that moved the user's wallet or debt (each kind: top-ups, grants, tips both
   * ways, plans, renewals, refunds), newest first, with the net amount for the user (wallet and
   * debt together: a refund that became debt still shows its full amount). Ordered by the
   * transfer's last posting on the user's accounts; the cursor is that posting's id, compared
   * after the sums so that a transfer with two postings here is never split over two pages.
   */
  async history(userId: string, opts: { cursor?: number; limit: number }) {
    const accounts = await this.d.db.select({ id: paymentAccounts.id }).from(paymentAccounts).where(eq(paymentAccounts.userId, userId));
    if (!accounts.length) return { items: [], nextCursor: null as number | null };
    const ids = accounts.map((a) => a.id);
    const last = sql<number>`max(${paymentPostings.id})`;
    const rows = await this.d.db
      .select({
        transferId: paymentPostings.transferId,
        net: sql<string>`sum(${paymentPostings.amount})`,
        last,
        kind: paymentTransfers.kind,
        ts: paymentTransfers.createdAt,
        conversationId: paymentTransfers.conversationId,
        metadata: paymentTransfers.metadata,
        amount: paymentTransfers.amount,
      })
      .from(paymentPostings)
      .innerJoin(paymentTransfers, eq(paymentTransfers.id, paymentPostings.transferId))
      .where(inArray(paymentPostings.accountId, ids))
      .groupBy(paymentPostings.transferId, paymentTransfers.id)
      .having(opts.cursor ? lt(last, opts.cursor) : undefined)
      .orderBy(desc(last))
      .limit(opts.limit + 1);
    const page = rows.slice(0, opts.limit);
    return {
      items: page.map((r) => {
        const m = r.metadata;
        const counterparty = r.kind === 'tip' ? (m.from === userId ? m.to : m.from) : undefined;
        // A refund recorded wholly as debt nets to zero on the wallet side only; the user's view
        // is the transfer's amount with its sign.
        const net = Number(r.net);
        return {
          transferId: r.transferId,
          kind: r.kind,
          amount: net,
          ts: r.ts.toISOString(),
          ...(typeof counterparty === 'string' ? { counterparty } : {}),
          ...(r.conversationId ? { conversationId: r.conversationId } : {}),
        };
      }),
      nextCursor: rows.length > opts.limit ? Number(page[page.length - 1]!.last) : null,
    };
  }

  /**
   * The transfer made under an idempotency key, if any. `db` is a transfer's own transaction when
   * the answer must be read under its account locks.
   */
  async transferByKey(initiator: string, key: string, db: Pick<Db, 'select'> = this.d.db) {
    const [t] = await db
      .select({
        id: paymentTransfers.id,
        kind: paymentTransfers.kind,
        currency: paymentTransfers.currency,
        amount: paymentTransfers.amount,
        metadata: paymentTransfers.metadata,
      })
      .from(paymentTransfers)
      .where(and(eq(paymentTransfers.initiator, initiator), eq(paymentTransfers.idempotencyKey, key)));
    return t ? { ...t, amount: Number(t.amount), metadata: (t.metadata ?? {}) as Record<string, unknown> } : null;
  }

  /** Every posting of the user's accounts with its transfer (account export). */
  async postingsOf(userId: string) {
    return this.d.db
      .select({
        postingId: paymentPostings.id,
        transferId: paymentPostings.transferId,
        account: paymentAccounts.kind,
        amount: paymentPostings.amount,
        kind: paymentTransfers.kind,
        currency: paymentTransfers.currency,
        conversationId: paymentTransfers.conversationId,
        metadata: paymentTransfers.metadata,
        createdAt: paymentTransfers.createdAt,
      })
      .from(paymentPostings)
      .innerJoin(paymentAccounts, eq(paymentAccounts.id, paymentPostings.accountId))
      .innerJoin(paymentTransfers, eq(paymentTransfers.id, paymentPostings.transferId))
      .where(eq(paymentAccounts.userId, userId))
      .orderBy(asc(paymentPostings.id));
  }
}
