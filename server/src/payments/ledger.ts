// Just over 400 lines on purpose: every money movement and the one transaction that writes it live
// here, so no other module can move money; the read queries are apart (ledger-queries.ts).
import { randomUUID } from 'node:crypto';
import { and, asc, eq, isNull, or, sql } from 'drizzle-orm';
import type { Db } from '../db/database.ts';
import { paymentAccounts, paymentPostings, paymentTransfers } from '../../../db/schema/index.ts';
import { DomainError, isRetryableTxError } from '../errors.ts';
import { LedgerQueries, type LedgerDeps } from './ledger-queries.ts';
import type { Logger } from '../observability/logger.ts';

export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
export type TransferKind = (typeof paymentTransfers.$inferSelect)['kind'];
type SystemKind = 'stripe' | 'grants' | 'revenue';

/** Every money movement is one of these; its postings always sum to zero. */
export interface TransferRecord {
  id: string;
  kind: TransferKind;
  initiator: string;
  idempotencyKey: string;
  amount: number;
  currency: string;
  conversationId: string | null;
  metadata: Record<string, unknown>;
  createdAt: Date;
}

export interface TransferResult {
  transfer: TransferRecord;
  /** True when the idempotency key was already used: nothing moved this time. */
  replayed: boolean;
}

interface Locked {
  id: string;
  kind: string;
  balance: number;
}

interface Plan {
  kind: TransferKind;
  initiator: string;
  key: string;
  amount: number;
  conversationId?: string | null;
  metadata?: Record<string, unknown>;
  /** Accounts to lock, as refs (any order: they are locked sorted by id). */
  accounts: string[];
  /**
   * Reads made under the account locks, before any posting: the place for every check that
   * decides whether money moves and that other rows hold (a subscription's period). Throws to
   * refuse; nothing is written. What it returns is added to the transfer's metadata.
   */
  guard?(tx: Tx): Promise<Record<string, unknown> | void>;
  /** The postings (by account ref) from the locked balances; throws a DomainError to refuse (nothing is written). */
  postings(locked: Map<string, Locked>): { account: string; amount: number }[];
  /** Must match on a replay, else the key was reused for a different request. */
  same?(t: TransferRecord): boolean;
  /** More writes in the same transaction (a subscription row). */
  within?(tx: Tx, transfer: TransferRecord): Promise<void>;
}

const MAX_ATTEMPTS = 6;

/**
 * The one module that moves money (and the only writer of payment_accounts, payment_transfers
 * and payment_postings). Each transfer is one transaction: claim the idempotency key, lock the
 * accounts in id order (so two transfers over the same accounts never deadlock), compute the
 * postings from the locked balances, write them and the cached balances together. Serialization
 * failures and deadlocks are retried with jittered, bounded backoff.
 */
export class Ledger extends LedgerQueries {
  /** Account refs known to exist (so a transfer skips the insert that would create them). */
  private known = new Set<string>();

  constructor(protected override readonly d: LedgerDeps & { logger?: Logger; onRetry?: () => void }) {
    super(d);
  }

  // ---- the movements ---------------------------------------------------------------------

  /**
   * A tip between two wallets. Refused while the payer owes, or past the payer's balance. A payee
   * in debt has it paid first, as by a top-up; the rest reaches their wallet.
   */
  async tip(a: {
    from: string;
    to: string;
    amount: number;
    key: string;
    conversationId: string;
    note?: string;
  }): Promise<TransferResult & { balance: number }> {
    const payer = this.userAccounts(a.from);
    const payee = this.userAccounts(a.to);
    let balance = 0;
    const r = await this.run({
      kind: 'tip',
      initiator: a.from,
      key: a.key,
      amount: a.amount,
      conversationId: a.conversationId,
      metadata: { from: a.from, to: a.to, ...(a.note ? { note: a.note } : {}) },
      accounts: [payer.wallet, payer.debt, payee.wallet, payee.debt],
      same: (t) => t.kind === 'tip' && t.amount === a.amount && t.conversationId === a.conversationId && t.metadata.to === a.to,
      postings: (l) => {
        if (l.get(payer.debt)!.balance < 0) throw new DomainError('PRECONDITION_FAILED', 'you owe money: pay the debt with a top-up first');
        const have = l.get(payer.wallet)!.balance;
        if (have < a.amount) throw new DomainError('PRECONDITION_FAILED', 'insufficient balance');
        balance = have - a.amount;
        const toDebt = Math.min(-l.get(payee.debt)!.balance, a.amount);
        return [
          { account: payer.wallet, amount: -a.amount },
          { account: payee.debt, amount: toDebt },
          { account: payee.wallet, amount: a.amount - toDebt },
        ];
      },
    });
    if (r.replayed) balance = (await this.balances(a.from)).balance;
    return { ...r, balance };
  }

  /** Card money in (a PaymentIntent succeeded): pays the user's debt first, the rest to the wallet. Once per PaymentIntent. */
  creditTopUp(a: { userId: string; amount: number; paymentIntentId: string }) {
    return this.fundFrom('stripe', 'topup', 'stripe', `pi:${a.paymentIntentId}`, a.userId, a.amount, {
      paymentIntentId: a.paymentIntentId,
    });
  }

  /** Development and demo money from the grants account (audited by the caller). */
  grant(a: { userId: string; amount: number; key: string; actor: string }) {
    return this.fundFrom('grants', 'grant', `grant:${a.actor}`, a.key, a.userId, a.amount, { actor: a.actor });
  }

  /**
   * Card money back out (a refund): from the wallet as far as it goes, the rest becomes debt.
   * Once per refund id.
   */
  async debitRefund(a: { userId: string; amount: number; refundId: string; paymentIntentId?: string }) {
    const u = this.userAccounts(a.userId);
    const stripe = this.systemAccount('stripe');
    let voided = false;
    return this.run({
      kind: 'refund',
      initiator: 'stripe',
      key: `refund:${a.refundId}`,
      amount: a.amount,
      metadata: { refundId: a.refundId, paymentIntentId: a.paymentIntentId, userId: a.userId },
      accounts: [u.wallet, u.debt, stripe],
      // Stripe said it failed before this debit arrived (webhooks come in any order): nothing moves.
      guard: async (tx) => {
        voided = (await this.transferByKey('stripe', `refund_reversal:${a.refundId}`, tx)) !== null;
        return voided ? { voided: true } : undefined;
      },
      postings: (l) => {
        if (voided) return [];
        const fromWallet = Math.min(l.get(u.wallet)!.balance, a.amount);
        return [
          { account: u.wallet, amount: -fromWallet },
          { account: u.debt, amount: -(a.amount - fromWallet) },
          { account: stripe, amount: a.amount },
        ];
      },
    });
  }

  /**
   * A refund Stripe reports failed or canceled after it was debited: the money comes back, to the
   * debt first (as a top-up pays it) and the rest to the wallet. Reported before its debit, it is
   * recorded with no postings, and the debit arriving later moves nothing (see `debitRefund`).
   */
  async reverseRefund(a: { userId: string; amount: number; refundId: string }) {
    const u = this.userAccounts(a.userId);
    const stripe = this.systemAccount('stripe');
    let debited = 0;
    return this.run({
      kind: 'refund_reversal',
      initiator: 'stripe',
      key: `refund_reversal:${a.refundId}`,
      amount: a.amount,
      metadata: { refundId: a.refundId, userId: a.userId },
      accounts: [u.wallet, u.debt, stripe],
      guard: async (tx) => {
        const debit = await this.transferByKey('stripe', `refund:${a.refundId}`, tx);
        debited = debit && !debit.metadata.voided ? debit.amount : 0;
        return { returned: debited };
      },
      postings: (l) => {
        const toDebt = Math.min(-l.get(u.debt)!.balance, debited);
        return [
          { account: u.debt, amount: toDebt },
          { account: u.wallet, amount: debited - toDebt },
          { account: stripe, amount: -debited },
        ];
      },
    });
  }

  /**
   * A wallet payment to premium revenue (subscribe, renewal). Refused while in debt or short.
   * `guard` runs with the user's wallet locked, so two charges of one user never both pass it.
   */
  async charge(a: {
    userId: string;
    amount: number;
    kind: 'subscription' | 'renewal';
    key: string;
    metadata: Record<string, unknown>;
    guard?: Plan['guard'];
    within?: Plan['within'];
  }) {
    const u = this.userAccounts(a.userId);
    const revenue = this.systemAccount('revenue');
    return this.run({
      kind: a.kind,
      initiator: a.userId,
      key: a.key,
      amount: a.amount,
      metadata: a.metadata,
      accounts: [u.wallet, u.debt, revenue],
      same: (t) => t.kind === a.kind && t.amount === a.amount && t.metadata.planId === a.metadata.planId,
      guard: a.guard,
      within: a.within,
      postings: (l) => {
        if (l.get(u.debt)!.balance < 0) throw new DomainError('PRECONDITION_FAILED', 'you owe money: pay the debt with a top-up first');
        if (l.get(u.wallet)!.balance < a.amount) throw new DomainError('PRECONDITION_FAILED', 'insufficient balance');
        return [
          { account: u.wallet, amount: -a.amount },
          { account: revenue, amount: a.amount },
        ];
      },
    });
  }

  private async fundFrom(
    source: SystemKind,
    kind: TransferKind,
    initiator: string,
    key: string,
    userId: string,
    amount: number,
    metadata: Record<string, unknown>,
  ) {
    const u = this.userAccounts(userId);
    const src = this.systemAccount(source);
    return this.run({
      kind,
      initiator,
      key,
      amount,
      metadata: { ...metadata, userId },
      accounts: [u.wallet, u.debt, src],
      same: (t) => t.kind === kind && t.amount === amount && t.metadata.userId === userId,
      postings: (l) => {
        const owed = -l.get(u.debt)!.balance;
        const toDebt = Math.min(owed, amount);
        return [
          { account: src, amount: -amount },
          { account: u.debt, amount: toDebt },
          { account: u.wallet, amount: amount - toDebt },
        ];
      },
    });
  }

  /**
   * Account erasure: the user's transfers and postings stay (financial records), their free
   * text (tip notes) goes. The user row left behind is a tombstone, so ids point to no one.
   */
  async detach(userId: string) {
    await this.d.db
      .update(paymentTransfers)
      .set({ metadata: sql`${paymentTransfers.metadata} - 'note'` })
      .where(and(eq(paymentTransfers.initiator, userId), sql`${paymentTransfers.metadata} ? 'note'`));
  }

  // ---- accounts ------------------------------------------------------------------------

  /** Refs of a user's accounts; the rows are made inside the first transfer that uses them. */
  userAccounts(userId: string): { wallet: string; debt: string } {
    return { wallet: `wallet:${userId}`, debt: `debt:${userId}` };
  }

  systemAccount(kind: SystemKind): string {
    return kind;
  }

  /**
   * Resolves account refs to rows, locked in id order. Accounts are created here, inside the
   * transfer's transaction, so a refused transfer leaves nothing behind (not even an empty wallet).
   */
  private async lockAccounts(tx: Tx, refs: string[]): Promise<Map<string, Locked>> {
    const cur = this.d.currency;
    const parsed = refs.map((ref) => {
      const i = ref.indexOf(':');
      return i < 0
        ? { ref, kind: ref as Locked['kind'], userId: null }
        : { ref, kind: ref.slice(0, i) as Locked['kind'], userId: ref.slice(i + 1) };
    });
    // Inserted in ref order: two first transfers between the same new accounts wait, never deadlock.
    const missing = parsed.filter((p) => !this.known.has(p.ref)).sort((x, y) => (x.ref < y.ref ? -1 : x.ref > y.ref ? 1 : 0));
    if (missing.length) {
      await tx
        .insert(paymentAccounts)
        .values(missing.map((p) => ({ id: randomUUID(), kind: p.kind as 'wallet', userId: p.userId, currency: cur })))
        .onConflictDoNothing();
    }
    const match = or(
      ...parsed.map((p) =>
        and(eq(paymentAccounts.kind, p.kind as 'wallet'), p.userId ? eq(paymentAccounts.userId, p.userId) : isNull(paymentAccounts.userId)),
      ),
    );
    const rows = await tx
      .select({ id: paymentAccounts.id, kind: paymentAccounts.kind, userId: paymentAccounts.userId, balance: paymentAccounts.balance })
      .from(paymentAccounts)
      .where(and(eq(paymentAccounts.currency, cur), match))
      .orderBy(asc(paymentAccounts.id))
      .for('update');
    const out = new Map<string, Locked>();
    for (const r of rows) {
      const ref = r.userId ? `${r.kind}:${r.userId}` : r.kind;
      out.set(ref, { id: r.id, kind: r.kind, balance: Number(r.balance) });
    }
    for (const p of parsed) if (!out.has(p.ref)) throw new Error(`account ${p.ref} missing`);
    return out;
  }

  // ---- the transaction -------------------------------------------------------------------

  private async run(p: Plan): Promise<TransferResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        const { result, refs } = await this.d.db.transaction((tx) => this.once(tx, p));
        // Committed: these accounts exist, later transfers need not try to create them.
        for (const ref of refs) if (this.known.size < 200_000) this.known.add(ref);
        return result;
      } catch (err) {
        if (!isRetryableTxError(err) || attempt >= MAX_ATTEMPTS) throw err;
        this.d.onRetry?.();
        // Full jitter over an exponential ceiling: 5, 10, 20, 40, 80 ms.
        await new Promise((r) => setTimeout(r, Math.random() * 5 * 2 ** (attempt - 1)));
      }
    }
  }

  private async once(tx: Tx, p: Plan): Promise<{ result: TransferResult; refs: string[] }> {
    const id = randomUUID();
    // Claiming the key first: a concurrent request with the same key waits here for this one
    // to commit (then replays it) or roll back (then claims the key itself).
    const claimed = await tx
      .insert(paymentTransfers)
      .values({
        id,
        kind: p.kind,
        initiator: p.initiator,
        idempotencyKey: p.key,
        amount: p.amount,
        currency: this.d.currency,
        conversationId: p.conversationId ?? null,
        metadata: p.metadata ?? {},
      })
      .onConflictDoNothing()
      .returning();
    if (!claimed.length) {
      const [prior] = await tx
        .select()
        .from(paymentTransfers)
        .where(and(eq(paymentTransfers.initiator, p.initiator), eq(paymentTransfers.idempotencyKey, p.key)));
      const t = norm(prior!);
      if (p.same && !p.same(t)) throw new DomainError('CONFLICT', 'this idempotency key was used for a different request');
      return { result: { transfer: t, replayed: true }, refs: [] };
    }
    const locked = await this.lockAccounts(tx, [...new Set(p.accounts)]);
    const more = await p.guard?.(tx);
    const postings = p
      .postings(locked)
      .filter((x) => x.amount !== 0)
      .map((x) => ({ accountId: locked.get(x.account)!.id, amount: x.amount }));
    if (postings.reduce((s, x) => s + x.amount, 0) !== 0) throw new Error(`unbalanced ${p.kind} transfer`);
    if (new Set(postings.map((x) => x.accountId)).size !== postings.length) throw new Error(`${p.kind}: two postings on one account`);
    // The postings and the cached balances in one statement (one round trip inside the lock).
    const accountIds = `{${postings.map((x) => x.accountId).join(',')}}`;
    const amounts = `{${postings.map((x) => x.amount).join(',')}}`;
    await tx.execute(sql`with p as (
        insert into ${paymentPostings} (transfer_id, account_id, amount)
        select ${id}::uuid, a, d from unnest(${accountIds}::uuid[], ${amounts}::bigint[]) as x(a, d)
        returning account_id, amount)
      update ${paymentAccounts} set balance = ${paymentAccounts}.balance + p.amount from p where ${paymentAccounts}.id = p.account_id`);
    const transfer = norm(claimed[0]!);
    if (more) {
      transfer.metadata = { ...transfer.metadata, ...more };
      await tx.update(paymentTransfers).set({ metadata: transfer.metadata }).where(eq(paymentTransfers.id, id));
    }
    await p.within?.(tx, transfer);
    return { result: { transfer, replayed: false }, refs: [...locked.keys()] };
  }
}

function norm(t: typeof paymentTransfers.$inferSelect): TransferRecord {
  return { ...t, amount: Number(t.amount) };
}
