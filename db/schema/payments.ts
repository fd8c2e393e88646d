import { sql } from 'drizzle-orm';
import { bigint, bigserial, boolean, check, index, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { users } from './users.ts';

/**
 * The double-entry ledger. Only server/src/payments/ledger.ts writes these tables: every money
 * movement is a transfer whose postings sum to zero, and an account's cached balance changes only
 * in the transaction that writes its postings.
 *
 * Signs: a wallet holds what its user owns (>= 0). A user's debt account is <= 0 (what the user
 * owes after a refund larger than the wallet). System accounts are the other side: `stripe`
 * (funding from card payments, negative), `grants` (development credit, negative), `revenue`
 * (premium income, positive).
 */
export const paymentAccounts = pgTable(
  'payment_accounts',
  {
    id: uuid('id').primaryKey(),
    kind: text('kind', { enum: ['wallet', 'debt', 'stripe', 'grants', 'revenue'] }).notNull(),
    /** Set for wallet and debt accounts; null for system accounts. */
    userId: uuid('user_id').references(() => users.id),
    currency: text('currency').notNull(),
    balance: bigint('balance', { mode: 'number' }).notNull().default(0),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('payment_accounts_user_uq').on(t.kind, t.userId, t.currency),
    uniqueIndex('payment_accounts_system_uq').on(t.kind, t.currency).where(sql`${t.userId} is null`),
    check('payment_accounts_wallet_balance', sql`${t.kind} <> 'wallet' or ${t.balance} >= 0`),
    check('payment_accounts_debt_balance', sql`${t.kind} <> 'debt' or ${t.balance} <= 0`),
    check('payment_accounts_owner', sql`(${t.kind} in ('wallet', 'debt')) = (${t.userId} is not null)`),
  ],
);

export const paymentTransfers = pgTable(
  'payment_transfers',
  {
    id: uuid('id').primaryKey(),
    kind: text('kind', { enum: ['topup', 'refund', 'refund_reversal', 'tip', 'subscription', 'renewal', 'grant'] }).notNull(),
    /** Who asked for it: a user id, or `stripe` for webhook credits and debits. */
    initiator: text('initiator').notNull(),
    idempotencyKey: text('idempotency_key').notNull(),
    /** The headline amount (positive, minor units); the postings carry the signed detail. */
    amount: bigint('amount', { mode: 'number' }).notNull(),
    currency: text('currency').notNull(),
    conversationId: uuid('conversation_id'),
    metadata: jsonb('metadata').$type<Record<string, unknown>>().notNull().default({}),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('payment_transfers_idem_uq').on(t.initiator, t.idempotencyKey),
    check('payment_transfers_amount', sql`${t.amount} > 0`),
  ],
);

export const paymentPostings = pgTable(
  'payment_postings',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    transferId: uuid('transfer_id')
      .notNull()
      .references(() => paymentTransfers.id),
    accountId: uuid('account_id')
      .notNull()
      .references(() => paymentAccounts.id),
    amount: bigint('amount', { mode: 'number' }).notNull(),
  },
  (t) => [
    index('payment_postings_account_idx').on(t.accountId, t.id),
    index('payment_postings_transfer_idx').on(t.transferId),
    check('payment_postings_nonzero', sql`${t.amount} <> 0`),
  ],
);

/** PaymentIntents made by `payments.createTopUp`: which user a webhook's money belongs to. */
export const paymentTopups = pgTable(
  'payment_topups',
  {
    paymentIntentId: text('payment_intent_id').primaryKey(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id),
    amount: bigint('amount', { mode: 'number' }).notNull(),
    currency: text('currency').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('payment_topups_user_idx').on(t.userId)],
);

/** Stripe event ids, recorded before an event is applied (deliveries repeat). */
export const stripeEvents = pgTable('stripe_events', {
  id: text('id').primaryKey(),
  type: text('type').notNull(),
  receivedAt: timestamp('received_at', { withTimezone: true }).notNull().defaultNow(),
  appliedAt: timestamp('applied_at', { withTimezone: true }),
  outcome: text('outcome'),
});

/** A user's paid plan; no row (or a period in the past) means the free plan. */
export const paymentSubscriptions = pgTable(
  'payment_subscriptions',
  {
    userId: uuid('user_id')
      .primaryKey()
      .references(() => users.id),
    planId: text('plan_id').notNull(),
    periodStart: timestamp('period_start', { withTimezone: true }).notNull(),
    periodEnd: timestamp('period_end', { withTimezone: true }).notNull(),
    autoRenew: boolean('auto_renew').notNull().default(true),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('payment_subscriptions_end_idx').on(t.periodEnd)],
);

/** Audit trail of money-related actions (grants, subscriptions, webhook outcomes). */
export const paymentAudit = pgTable(
  'payment_audit',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    userId: uuid('user_id'),
    event: text('event').notNull(),
    actor: text('actor').notNull(),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
    meta: jsonb('meta').$type<Record<string, unknown>>().notNull().default({}),
  },
  (t) => [index('payment_audit_user_idx').on(t.userId, t.at)],
);
