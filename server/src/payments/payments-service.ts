import { randomUUID } from 'node:crypto';
import { and, eq, gt, lte, sql } from 'drizzle-orm';
import type { Database, Db } from '../db/database.ts';
import { paymentAudit, paymentSubscriptions, paymentTopups, users } from '../../../db/schema/index.ts';
import { DomainError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { AppendResult, EventDraft } from '../store/message-store.ts';
import type { Entitlement, Entitlements } from './entitlements.ts';
import type { Ledger, Tx } from './ledger.ts';
import { FREE_PLAN_ID, type Plan } from './plans.ts';
import { StripeRefusedError, type StripeGateway } from './stripe-gateway.ts';

export interface PaymentsServiceDeps {
  db: Db;
  /** Prepared statements for the tip path. */
  database: Pick<Database, 'query'>;
  ledger: Ledger;
  entitlements: Entitlements;
  /** Null without STRIPE_SECRET_KEY: top-ups are refused, the rest works. */
  gateway: StripeGateway | null;
  /** The hub's group-committing writer: a tip's `system` event goes through it like any event. */
  writeEvent(conv: string, draft: EventDraft): Promise<AppendResult>;
  plans: Plan[];
  topUp: { min: number; max: number };
  logger: Logger;
  metrics?: Metrics;
  now?: () => number;
}

const DAY_MS = 86_400_000;

/** The caller has the plan already (seen under the wallet lock): the charge is rolled back. */
class AlreadyOnPlan extends Error {}
/** The subscription a renewal was about to charge for changed meanwhile (cancelled, replaced, renewed). */
class SubscriptionMoved extends Error {}

/** Every check in front of a tip, in one round trip (prepared once per connection). */
const TIP_CHECK_SQL = `select
    (select c.id from conversations c where c.id = $1::uuid) as conv,
    (select c.kind from conversations c where c.id = $1::uuid) as conv_kind,
    exists (select 1 from blocks b where b.blocker_id = $3::uuid and b.blocked_id = $2::text::uuid) as to_blocked_caller,
    exists (select 1 from blocks b where b.blocker_id = $2::text::uuid and b.blocked_id = $3::uuid) as caller_blocked_to,
    exists (select 1 from members m where m.conversation_id = $1::uuid and m.user_id = $2::text::uuid) as caller_in,
    exists (select 1 from members m where m.conversation_id = $1::uuid and m.user_id = $3::uuid) as to_in,
    t.kind as prior_kind, t.amount as prior_amount, t.conversation_id as prior_conv, t.metadata->>'to' as prior_to
  from (select 1) one
  left join payment_transfers t on t.initiator = $2::text and t.idempotency_key = $4::text`;

/**
 * `payments.*`: wallets, tips, top-ups and plans. Money moves only through the ledger; this
 * service checks who may do what, keeps the subscription rows, writes the tip events and the
 * audit trail, and tells the hubs when a user's limits change.
 */
export class PaymentsService {
  private readonly now: () => number;

  constructor(private readonly d: PaymentsServiceDeps) {
    this.now = d.now ?? Date.now;
  }

  get currency() {
    return this.d.ledger.currency;
  }

  async balance(userId: string) {
    const b = await this.d.ledger.balances(userId);
    return { currency: this.currency, balance: b.balance, debt: b.debt };
  }

  history(userId: string, q: { cursor?: number; limit?: number }) {
    return this.d.ledger.history(userId, { cursor: q.cursor, limit: q.limit ?? 50 });
  }

  plans() {
    return this.d.plans.map((p) => ({ id: p.id, name: p.name, price: p.price, periodDays: p.periodDays, limits: p.limits }));
  }

  entitlements(userId: string): Promise<Entitlement> {
    return this.d.entitlements.of(userId);
  }

  // ---- top-ups ---------------------------------------------------------------------------

  async createTopUp(userId: string, a: { amount: number; idempotencyKey?: string }) {
    if (!this.d.gateway) throw new DomainError('PRECONDITION_FAILED', 'payments are not configured');
    const { min, max } = this.d.topUp;
    if (a.amount < min || a.amount > max) throw new DomainError('BAD_REQUEST', `a top-up is between ${min} and ${max} minor units`);
    const key = `topup:${userId}:${a.idempotencyKey ?? randomUUID()}`;
    let pi: Awaited<ReturnType<StripeGateway['createTopUpIntent']>>;
    try {
      pi = await this.d.gateway.createTopUpIntent({ userId, amount: a.amount, currency: this.currency, idempotencyKey: key });
    } catch (err) {
      this.d.metrics?.paymentsTopups.inc({ outcome: 'stripe_error' });
      if (err instanceof StripeRefusedError) {
        throw new DomainError('BAD_REQUEST', `Stripe refused the top-up: ${err.message}`);
      }
      throw err;
    }
    await this.d.db
      .insert(paymentTopups)
      .values({ paymentIntentId: pi.id, userId, amount: pi.amount, currency: pi.currency })
      .onConflictDoNothing();
    this.d.metrics?.paymentsTopups.inc({ outcome: 'created' });
    await this.audit(userId, 'topup_created', `user:${userId}`, { paymentIntentId: pi.id, amount: pi.amount });
    return { paymentIntentId: pi.id, clientSecret: pi.clientSecret, amount: pi.amount, currency: pi.currency };
  }

  // ---- tips ------------------------------------------------------------------------------

  /**
   * A tip between two members of a conversation, and its `system` event, exactly once per
   * idempotency key. The event's cid is derived from the transfer id, so a retry after a crash
   * between the ledger commit and the append stores the event once (the store is idempotent on
   * conversation, sender and cid), and a retry after both returns the first result.
   */
  async tip(caller: string, a: { conversationId: string; toUserId: string; amount: number; idempotencyKey: string; note?: string }) {
    const conv = a.conversationId;
    // One prepared statement: the conversation, both memberships, and a transfer already made with this key.
    const [row] = await this.d.database.query<{
      conv: string | null;
      conv_kind: string | null;
      to_blocked_caller: boolean;
      caller_blocked_to: boolean;
      caller_in: boolean;
      to_in: boolean;
      prior_kind: string | null;
      prior_amount: string | number | null;
      prior_conv: string | null;
      prior_to: string | null;
    }>(TIP_CHECK_SQL, [conv, caller, a.toUserId, a.idempotencyKey]);
    if (row?.prior_kind) {
      if (row.prior_kind !== 'tip' || Number(row.prior_amount) !== a.amount || row.prior_conv !== conv || row.prior_to !== a.toUserId) {
        throw new DomainError('CONFLICT', 'this idempotency key was used for a different request');
      }
    } else {
      // A retry of a tip that went through is answered even if a membership changed since.
      if (a.toUserId === caller) throw new DomainError('BAD_REQUEST', 'you cannot tip yourself');
      if (!row?.conv) throw new DomainError('NOT_FOUND', 'no such conversation');
      if (!row.caller_in) throw new DomainError('FORBIDDEN', 'not a member of this conversation');
      if (!row.to_in) throw new DomainError('BAD_REQUEST', 'the recipient is not a member of this conversation');
      // As with messages: nothing reaches someone who blocked the caller, and a blocked DM takes nothing.
      if (row.to_blocked_caller) throw new DomainError('FORBIDDEN', 'you cannot tip this user');
      if (row.caller_blocked_to && row.conv_kind === 'direct') {
        throw new DomainError('FORBIDDEN', 'you blocked this user: unblock them to send');
      }
    }
    let r: Awaited<ReturnType<Ledger['tip']>>;
    try {
      r = await this.d.ledger.tip({
        from: caller,
        to: a.toUserId,
        amount: a.amount,
        key: a.idempotencyKey,
        conversationId: conv,
        note: a.note,
      });
    } catch (err) {
      if (err instanceof DomainError) this.d.metrics?.paymentsTransfers.inc({ kind: 'tip', outcome: 'refused' });
      throw err;
    }
    this.d.metrics?.paymentsTransfers.inc({ kind: 'tip', outcome: r.replayed ? 'replayed' : 'ok' });
    const t = r.transfer;
    const m = t.metadata as { from: string; to: string; note?: string };
    const { event } = await this.d.writeEvent(t.conversationId!, {
      id: randomUUID(),
      kind: 'system',
      from: m.from,
      ts: t.createdAt.getTime(),
      cid: `tip:${t.id}`,
      data: {
        subtype: 'tip',
        from: m.from,
        to: m.to,
        amount: t.amount,
        currency: t.currency,
        transferId: t.id,
        ...(m.note ? { note: m.note } : {}),
      },
    });
    return { transferId: t.id, balance: r.balance, seq: event.seq };
  }

  // ---- plans -----------------------------------------------------------------------------

  /**
   * Buys a period of a plan, or turns renewal back on when the caller is on it already. Calls
   * with different keys (two tabs) charge at most once per period: whether the caller already has
   * the plan is read with their wallet locked, in the transaction that would charge.
   */
  async subscribe(userId: string, a: { planId: string; idempotencyKey: string }): Promise<Entitlement> {
    const plan = this.d.plans.find((p) => p.id === a.planId);
    if (!plan) throw new DomainError('NOT_FOUND', 'no such plan');
    if (plan.id === FREE_PLAN_ID)
      throw new DomainError('BAD_REQUEST', 'the free plan needs no subscription: payments.cancel stops renewal');
    if (await this.resume(userId, plan.id, new Date(this.now()))) return this.d.entitlements.of(userId);
    let start = new Date(0);
    let end = start;
    let r: Awaited<ReturnType<Ledger['charge']>>;
    try {
      r = await this.d.ledger.charge({
        userId,
        amount: plan.price,
        kind: 'subscription',
        key: a.idempotencyKey,
        metadata: { planId: plan.id },
        guard: async (tx: Tx) => {
          const [row] = await tx.select().from(paymentSubscriptions).where(eq(paymentSubscriptions.userId, userId)).for('update');
          // The period starts when it is bought: the clock is read under the lock, after any
          // renewal or expiry that got there first.
          start = new Date(this.now());
          if (row && row.planId === plan.id && row.periodEnd > start) throw new AlreadyOnPlan();
          end = new Date(start.getTime() + plan.periodDays * DAY_MS);
          return { periodEnd: end.toISOString() };
        },
        within: async (tx: Tx) => {
          const sub = { userId, planId: plan.id, periodStart: start, periodEnd: end, autoRenew: true, updatedAt: start };
          await tx.insert(paymentSubscriptions).values(sub).onConflictDoUpdate({ target: paymentSubscriptions.userId, set: sub });
        },
      });
    } catch (err) {
      if (!(err instanceof AlreadyOnPlan)) throw err;
      // Bought by a concurrent call (or a cancel came in between): nothing charged; renewal on.
      this.d.metrics?.paymentsTransfers.inc({ kind: 'subscription', outcome: 'already_on_plan' });
      await this.resume(userId, plan.id, new Date(this.now()));
      return this.d.entitlements.of(userId);
    }
    this.d.metrics?.paymentsTransfers.inc({ kind: 'subscription', outcome: r.replayed ? 'replayed' : 'ok' });
    if (r.replayed) return this.d.entitlements.of(userId);
    await this.audit(userId, 'subscribed', `user:${userId}`, { planId: plan.id, transferId: r.transfer.id, until: end.toISOString() });
    return this.d.entitlements.announce(userId);
  }

  /** Renewal back on for a running, cancelled period of this plan, in one statement. True when it was. */
  private async resume(userId: string, planId: string, now: Date): Promise<boolean> {
    const rows = await this.d.db
      .update(paymentSubscriptions)
      .set({ autoRenew: true, updatedAt: now })
      .where(
        and(
          eq(paymentSubscriptions.userId, userId),
          eq(paymentSubscriptions.planId, planId),
          gt(paymentSubscriptions.periodEnd, now),
          eq(paymentSubscriptions.autoRenew, false),
        ),
      )
      .returning({ u: paymentSubscriptions.userId });
    if (!rows.length) return false;
    await this.audit(userId, 'subscription_resumed', `user:${userId}`, { planId });
    return true;
  }

  /** No renewal; the plan lasts to the end of its period. */
  async cancel(userId: string): Promise<Entitlement> {
    const rows = await this.d.db
      .update(paymentSubscriptions)
      .set({ autoRenew: false, updatedAt: new Date(this.now()) })
      .where(eq(paymentSubscriptions.userId, userId))
      .returning({ planId: paymentSubscriptions.planId });
    if (rows.length) await this.audit(userId, 'subscription_cancelled', `user:${userId}`, { planId: rows[0]!.planId });
    return this.d.entitlements.of(userId);
  }

  /**
   * The renewal job: every subscription whose period has ended is charged for the next one, or
   * (renewal off, wallet short, user in debt, plan gone) ends and the user is back on free.
   * Idempotent per period (the charge's key is the period's end). `now` is injected in tests.
   */
  async runRenewals(now = this.now()) {
    const due = await this.d.db
      .select()
      .from(paymentSubscriptions)
      .where(lte(paymentSubscriptions.periodEnd, new Date(now)))
      .limit(500);
    let renewed = 0;
    let downgraded = 0;
    for (const row of due) {
      const plan = this.d.plans.find((p) => p.id === row.planId);
      if (row.autoRenew && plan && plan.price > 0) {
        // Periods follow each other; a renewal more than a day late (the job was down) starts now.
        const start = new Date(now - row.periodEnd.getTime() > DAY_MS ? now : row.periodEnd.getTime());
        const end = new Date(start.getTime() + plan.periodDays * DAY_MS);
        try {
          const r = await this.d.ledger.charge({
            userId: row.userId,
            amount: plan.price,
            kind: 'renewal',
            key: `renewal:${plan.id}:${row.periodEnd.toISOString()}`,
            metadata: { planId: plan.id, periodEnd: end.toISOString() },
            // The row as read above may be stale by now: a cancel, a new plan or another run.
            guard: async (tx: Tx) => {
              const [cur] = await tx.select().from(paymentSubscriptions).where(eq(paymentSubscriptions.userId, row.userId)).for('update');
              if (!cur?.autoRenew || cur.planId !== plan.id || cur.periodEnd.getTime() !== row.periodEnd.getTime())
                throw new SubscriptionMoved();
            },
            within: async (tx: Tx) => {
              await tx
                .update(paymentSubscriptions)
                .set({ periodStart: start, periodEnd: end, updatedAt: new Date(now) })
                .where(eq(paymentSubscriptions.userId, row.userId));
            },
          });
          if (r.replayed) continue;
          renewed++;
          this.d.metrics?.paymentsTransfers.inc({ kind: 'renewal', outcome: 'ok' });
          await this.audit(row.userId, 'subscription_renewed', 'renewal', { planId: plan.id, until: end.toISOString() });
          await this.d.entitlements.announce(row.userId);
          continue;
        } catch (err) {
          // Changed since it was read: the next run sees the row as it is now.
          if (err instanceof SubscriptionMoved) continue;
          if (!(err instanceof DomainError)) throw err;
          this.d.metrics?.paymentsTransfers.inc({ kind: 'renewal', outcome: 'refused' });
        }
      }
      // Only the row as it was read: a period bought or renewal turned back on since stays.
      const gone = await this.d.db
        .delete(paymentSubscriptions)
        .where(
          and(
            eq(paymentSubscriptions.userId, row.userId),
            eq(paymentSubscriptions.periodEnd, row.periodEnd),
            eq(paymentSubscriptions.autoRenew, row.autoRenew),
            eq(paymentSubscriptions.planId, row.planId),
          ),
        )
        .returning({ u: paymentSubscriptions.userId });
      if (!gone.length) continue;
      downgraded++;
      await this.audit(row.userId, row.autoRenew ? 'subscription_downgraded' : 'subscription_expired', 'renewal', { planId: row.planId });
      await this.d.entitlements.announce(row.userId);
    }
    return { renewed, downgraded };
  }

  // ---- account export and erasure -------------------------------------------------------

  async exportOf(userId: string) {
    const [balance, entitlement, postings] = await Promise.all([
      this.balance(userId),
      this.entitlements(userId),
      this.d.ledger.postingsOf(userId),
    ]);
    return {
      ...balance,
      entitlement,
      postings: postings.map((p) => ({ ...p, amount: Number(p.amount), createdAt: p.createdAt.toISOString() })),
    };
  }

  async detach(userId: string) {
    await this.d.ledger.detach(userId);
    await this.audit(userId, 'account_detached', `user:${userId}`, {});
  }

  // ---- grants ----------------------------------------------------------------------------

  /** `npm run payments:grant`: credits a wallet from the grants account, audited. */
  async grant(a: { username: string; amount: number; actor: string; key?: string }) {
    const [u] = await this.d.db
      .select({ id: users.id })
      .from(users)
      .where(sql`lower(${users.username}) = lower(${a.username}) and ${users.deletedAt} is null`);
    if (!u) throw new DomainError('NOT_FOUND', `no user named ${a.username}`);
    const r = await this.d.ledger.grant({ userId: u.id, amount: a.amount, key: a.key ?? randomUUID(), actor: a.actor });
    if (!r.replayed) await this.audit(u.id, 'grant', a.actor, { amount: a.amount, transferId: r.transfer.id });
    return { userId: u.id, transferId: r.transfer.id, replayed: r.replayed, ...(await this.balance(u.id)) };
  }

  async audit(userId: string | null, event: string, actor: string, meta: Record<string, unknown>) {
    await this.d.db.insert(paymentAudit).values({ userId, event, actor, meta, at: new Date(this.now()) });
  }
}
