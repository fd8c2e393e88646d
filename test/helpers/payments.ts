import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import Stripe from 'stripe';
import { rowsOf, type Database } from '../../server/src/db/database.ts';
import { sql } from 'drizzle-orm';

export const WEBHOOK_SECRET = 'whsec_test_' + randomBytes(12).toString('hex');

/** Replica settings for payments tests: Stripe pointed at the harness's stripe-mock. */
export function stripeEnv(stripeApiUrl: string): Record<string, string> {
  return { STRIPE_SECRET_KEY: 'sk_test_hubbub', STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET, STRIPE_API_URL: stripeApiUrl };
}

const evtId = () => 'evt_' + randomBytes(12).toString('hex');
const created = () => Math.floor(Date.now() / 1000);

function envelope(type: string, object: Record<string, unknown>, id = evtId()) {
  return {
    id,
    object: 'event',
    api_version: '2025-01-27.acacia',
    created: created(),
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
    data: { object },
  };
}

/** A real `payment_intent.succeeded` event body, as Stripe sends it. */
export function paymentSucceeded(pi: string, amount: number, opts: { userId?: string; currency?: string; eventId?: string } = {}) {
  return envelope(
    'payment_intent.succeeded',
    {
      id: pi,
      object: 'payment_intent',
      amount,
      amount_received: amount,
      currency: opts.currency ?? 'usd',
      status: 'succeeded',
      metadata: opts.userId ? { hubbub_user_id: opts.userId } : {},
      latest_charge: 'ch_' + pi.slice(3),
    },
    opts.eventId,
  );
}

/**
 * A real `charge.refunded` event body with its refunds listed. `currency: null` leaves the
 * currency out of the charge and its refunds (`refundCurrency` sets the refunds' alone);
 * `userId` puts the owner in the charge's metadata, as on a PaymentIntent the hub did not make.
 */
export function chargeRefunded(
  pi: string,
  refunds: { id: string; amount: number }[],
  opts: { eventId?: string; currency?: string | null; refundCurrency?: string | null; userId?: string } = {},
) {
  const total = refunds.reduce((s, r) => s + r.amount, 0);
  const currency = opts.currency === undefined ? 'usd' : opts.currency;
  const refundCurrency = opts.refundCurrency === undefined ? currency : opts.refundCurrency;
  const cur = (c: string | null) => (c === null ? {} : { currency: c });
  return envelope(
    'charge.refunded',
    {
      id: 'ch_' + pi.slice(3),
      object: 'charge',
      amount: total,
      amount_refunded: total,
      ...cur(currency),
      payment_intent: pi,
      refunded: true,
      metadata: opts.userId ? { hubbub_user_id: opts.userId } : {},
      refunds: {
        object: 'list',
        has_more: false,
        data: refunds.map((r) => ({
          id: r.id,
          object: 'refund',
          amount: r.amount,
          ...cur(refundCurrency),
          payment_intent: pi,
          status: 'succeeded',
        })),
      },
    },
    opts.eventId,
  );
}

/** `charge.refund.updated`: a refund whose status changed (to `failed` or `canceled`, say). */
export function refundUpdated(pi: string, refund: { id: string; amount: number; status: string }, opts: { eventId?: string } = {}) {
  return envelope(
    'charge.refund.updated',
    { id: refund.id, object: 'refund', amount: refund.amount, currency: 'usd', payment_intent: pi, status: refund.status },
    opts.eventId,
  );
}

export function sign(payload: string, opts: { secret?: string; timestamp?: number } = {}) {
  return Stripe.webhooks.generateTestHeaderString({ payload, secret: opts.secret ?? WEBHOOK_SECRET, timestamp: opts.timestamp });
}

/** POSTs a body to the hub's webhook endpoint, signed unless a header is given. */
export async function deliver(port: number, body: unknown, opts: { signature?: string | null; raw?: string } = {}) {
  const payload = opts.raw ?? JSON.stringify(body);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const sig = opts.signature === undefined ? sign(payload) : opts.signature;
  if (sig !== null) headers['stripe-signature'] = sig;
  const res = await fetch(`http://127.0.0.1:${port}/webhooks/stripe`, { method: 'POST', headers, body: payload });
  return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, unknown> | null };
}

/** Everything the ledger holds, for before/after comparisons. */
export async function ledgerSnapshot(database: Database) {
  const q = async (text: string) => rowsOf<Record<string, unknown>>(await database.db.execute(sql.raw(text))).map((r) => ({ ...r }));
  return {
    accounts: await q('select id, kind, user_id, balance::text from payment_accounts order by id'),
    transfers: await q('select id, kind, amount::text from payment_transfers order by id'),
    postings: await q('select count(*)::int as n, coalesce(sum(amount), 0)::text as sum from payment_postings'),
    events: await q('select count(*)::int as n from stripe_events'),
    subscriptions: await q('select user_id, plan_id, period_end from payment_subscriptions order by user_id'),
  };
}

/**
 * The ledger's invariants: every transfer's postings sum to zero, all postings sum to zero,
 * every cached balance equals its postings, no wallet negative, no debt positive.
 */
export async function assertLedgerConsistent(database: Database) {
  const q = async (text: string) => rowsOf<Record<string, unknown>>(await database.db.execute(sql.raw(text))).map((r) => ({ ...r }));
  const [total] = await q('select coalesce(sum(amount), 0)::text as s from payment_postings');
  assert.equal(total!.s, '0', 'the sum of all postings is zero');
  const unbalanced = await q('select transfer_id from payment_postings group by transfer_id having sum(amount) <> 0');
  assert.deepEqual(unbalanced, [], 'every transfer sums to zero');
  // Only the two records of a refund that failed before its debit arrived move nothing.
  const orphans = await q(`select t.id from payment_transfers t left join payment_postings p on p.transfer_id = t.id where p.id is null
    and not (t.kind = 'refund' and t.metadata->>'voided' = 'true') and not (t.kind = 'refund_reversal' and t.metadata->>'returned' = '0')`);
  assert.deepEqual(orphans, [], 'every transfer has postings, but a refund voided before its debit');
  const drift = await q(`select a.id, a.balance::text, coalesce(sum(p.amount), 0)::text as postings from payment_accounts a
    left join payment_postings p on p.account_id = a.id group by a.id having a.balance <> coalesce(sum(p.amount), 0)`);
  assert.deepEqual(drift, [], 'every balance equals its postings');
  const bad = await q(`select id from payment_accounts where (kind = 'wallet' and balance < 0) or (kind = 'debt' and balance > 0)`);
  assert.deepEqual(bad, [], 'no wallet negative, no debt positive');
}

/**
 * Holds row locks in a transaction of its own on PostgreSQL, so a test can line concurrent money
 * calls up behind them: `waiters(n)` resolves once n other sessions of the database wait on a
 * lock, `release()` commits. This opens the race window every time instead of by luck.
 */
export async function holdLocks(databaseUrl: string, statement: string, params: unknown[]) {
  const { default: postgres } = await import('postgres');
  const conn = postgres(databaseUrl, { max: 2, onnotice: () => {} });
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let locked!: () => void;
  const lockedP = new Promise<void>((r) => (locked = r));
  const tx = conn.begin(async (t) => {
    const rows = await t.unsafe(statement, params as never[]);
    assert.ok(rows.length > 0, `holdLocks: ${statement} locked no row`);
    locked();
    await released;
  });
  await Promise.race([lockedP, tx]);
  return {
    /** Resolves when `n` other sessions of this database wait on a lock (polled every 5 ms, 10 s at most). */
    async waiters(n: number) {
      const until = Date.now() + 10_000;
      for (;;) {
        const [row] = await conn`select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()`;
        if (row!.n >= n) return;
        if (Date.now() > until) throw new Error(`holdLocks: ${row!.n} sessions wait on a lock, expected ${n}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    async release() {
      release();
      await tx;
      await conn.end({ timeout: 5 });
    },
  };
}
