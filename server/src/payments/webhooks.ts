import { eq } from 'drizzle-orm';
import type Stripe from 'stripe';
import type { Db } from '../db/database.ts';
import { paymentTopups, stripeEvents, users } from '../../../db/schema/index.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Ledger } from './ledger.ts';
import type { PaymentsService } from './payments-service.ts';
import { StripeSignatureError, verifyStripeEvent } from './stripe-gateway.ts';

export interface WebhookReply {
  status: number;
  body: Record<string, unknown>;
}

/** Event types applied; every other type is acknowledged and ignored. */
const HANDLED = new Set(['payment_intent.succeeded', 'charge.refunded', 'refund.created', 'refund.updated', 'charge.refund.updated']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface RefundLike {
  id: string;
  amount: number;
  status?: string | null;
  currency?: string;
}

/**
 * `POST /webhooks/stripe`: verifies the signature over the raw body (300 s tolerance), records
 * the event id before applying it, and applies it idempotently: a PaymentIntent credits once
 * (the ledger's key is its id), a refund debits once (keyed by the refund id). Deliveries that
 * repeat, run concurrently or arrive out of order converge on the same ledger: a refund before
 * its payment's success becomes debt, which the success then pays first.
 */
export class StripeWebhooks {
  constructor(
    private readonly d: {
      db: Db;
      ledger: Ledger;
      payments: PaymentsService;
      secret: string | undefined;
      currency: string;
      logger: Logger;
      metrics?: Metrics;
    },
  ) {}

  async handle(raw: Buffer, signature: string | undefined): Promise<WebhookReply> {
    if (!this.d.secret) return { status: 503, body: { error: 'webhooks are not configured' } };
    if (!signature) return this.refuse('unsigned', 400, 'missing Stripe-Signature');
    let event: Stripe.Event;
    try {
      event = await verifyStripeEvent(raw, signature, this.d.secret);
    } catch (err) {
      if (err instanceof StripeSignatureError) return this.refuse('bad_signature', 400, 'signature verification failed');
      // Signed correctly but not JSON.
      return this.refuse('malformed', 400, 'body is not a Stripe event');
    }
    if (
      !event ||
      typeof event.id !== 'string' ||
      typeof event.type !== 'string' ||
      typeof event.data?.object !== 'object' ||
      event.data.object === null
    ) {
      return this.refuse('malformed', 400, 'body is not a Stripe event');
    }
    const type = HANDLED.has(event.type) ? event.type : 'other';
    const inserted = await this.d.db
      .insert(stripeEvents)
      .values({ id: event.id.slice(0, 255), type: event.type.slice(0, 100) })
      .onConflictDoNothing()
      .returning();
    if (!inserted.length) {
      const [seen] = await this.d.db.select().from(stripeEvents).where(eq(stripeEvents.id, event.id));
      if (seen?.appliedAt) {
        this.d.metrics?.paymentsWebhooks.inc({ type, outcome: 'duplicate' });
        return { status: 200, body: { received: true, duplicate: true } };
      }
      // Recorded but not applied (a crash, or a concurrent delivery still at it): applying
      // again is safe, every movement is keyed.
    }
    const outcome = await this.apply(event);
    await this.d.db.update(stripeEvents).set({ appliedAt: new Date(), outcome }).where(eq(stripeEvents.id, event.id));
    this.d.metrics?.paymentsWebhooks.inc({ type, outcome });
    return { status: 200, body: { received: true, outcome } };
  }

  private refuse(outcome: string, status: number, error: string): WebhookReply {
    this.d.metrics?.paymentsWebhooks.inc({ type: 'unverified', outcome });
    return { status, body: { error } };
  }

  private async apply(event: Stripe.Event): Promise<string> {
    const obj = event.data.object as unknown as Record<string, unknown>;
    switch (event.type) {
      case 'payment_intent.succeeded':
        return this.credit(obj);
      case 'charge.refunded': {
        const list = (obj.refunds as { data?: unknown[] } | undefined)?.data;
        if (!Array.isArray(list) || !list.length) return 'no_refunds_listed';
        const outcomes = [];
        for (const r of list)
          outcomes.push(await this.refund(r as Record<string, unknown>, idOf(obj.payment_intent), obj.metadata, obj.currency));
        return outcomes.includes('applied') ? 'applied' : (outcomes[0] ?? 'ignored');
      }
      case 'refund.created':
      case 'refund.updated':
      case 'charge.refund.updated':
        return this.refund(obj, idOf(obj.payment_intent), obj.metadata, undefined);
      default:
        return 'ignored';
    }
  }

  private async credit(pi: Record<string, unknown>): Promise<string> {
    const id = idOf(pi.id);
    const amount = pi.amount_received;
    if (!id || !isAmount(amount)) return 'malformed';
    if (pi.currency !== this.d.currency) {
      this.d.logger.warn(
        { paymentIntent: id, currency: pi.currency, walletCurrency: this.d.currency },
        'payment not credited: not in the wallet currency',
      );
      return 'wrong_currency';
    }
    const userId = await this.ownerOf(id, pi.metadata);
    if (!userId) {
      this.d.logger.warn({ paymentIntent: id }, 'payment for no known user ignored');
      await this.d.payments.audit(null, 'stripe_unattributed', 'stripe', { paymentIntentId: id, amount });
      return 'unknown_user';
    }
    const r = await this.d.ledger.creditTopUp({ userId, amount, paymentIntentId: id });
    if (r.replayed) return 'already_applied';
    this.d.metrics?.paymentsTopups.inc({ outcome: 'credited' });
    await this.d.payments.audit(userId, 'topup_credited', 'stripe', { paymentIntentId: id, amount, transferId: r.transfer.id });
    return 'applied';
  }

  /**
   * A refund debits the wallet only in the currency of the payment it returns. The currency is
   * the refund's, else its charge's, else the one recorded for the PaymentIntent (the top-up row
   * made with it, or its credit); every one of them known must be the wallet's. A refund in
   * another currency, or with none known, moves nothing: it is logged, audited and its event
   * recorded with the outcome, as a permanent failure (the event is not applied later).
   */
  private async refund(
    r: Record<string, unknown>,
    paymentIntentId: string | null,
    metadata: unknown,
    chargeCurrency: unknown,
  ): Promise<string> {
    const refund = r as unknown as RefundLike;
    if (typeof refund.id !== 'string' || !isAmount(refund.amount)) return 'malformed';
    const userId = paymentIntentId ? await this.ownerOf(paymentIntentId, metadata) : await this.ownerOf(null, metadata);
    if (!userId) {
      await this.d.payments.audit(null, 'stripe_unattributed', 'stripe', { refundId: refund.id, amount: refund.amount });
      return 'unknown_user';
    }
    if (refund.status === 'failed' || refund.status === 'canceled') {
      const t = await this.d.ledger.reverseRefund({ userId, amount: refund.amount, refundId: refund.id });
      if (t.replayed) return 'already_applied';
      await this.d.payments.audit(userId, 'refund_reversed', 'stripe', {
        refundId: refund.id,
        status: refund.status,
        returned: t.transfer.metadata.returned,
        transferId: t.transfer.id,
      });
      return 'reversed';
    }
    const known = [refund.currency, chargeCurrency, paymentIntentId ? await this.recordedCurrency(paymentIntentId) : null].filter(
      (c) => c !== undefined && c !== null,
    );
    const reason = !known.length ? 'no_currency' : known.every((c) => c === this.d.currency) ? null : 'wrong_currency';
    if (reason) {
      const detail = { refundId: refund.id, paymentIntentId, amount: refund.amount, currencies: known.map(String), reason };
      this.d.logger.warn(
        { ...detail, walletCurrency: this.d.currency },
        'refund not applied: its currency is unknown or not the wallet currency',
      );
      await this.d.payments.audit(userId, 'stripe_refund_unapplied', 'stripe', detail);
      return reason;
    }
    const t = await this.d.ledger.debitRefund({
      userId,
      amount: refund.amount,
      refundId: refund.id,
      paymentIntentId: paymentIntentId ?? undefined,
    });
    if (t.replayed) return 'already_applied';
    if (t.transfer.metadata.voided) return 'voided';
    await this.d.payments.audit(userId, 'refund_debited', 'stripe', {
      refundId: refund.id,
      paymentIntentId,
      amount: refund.amount,
      transferId: t.transfer.id,
    });
    return 'applied';
  }

  /** The currency this hub recorded for a PaymentIntent: at its creation, else at its credit. */
  private async recordedCurrency(paymentIntentId: string): Promise<string | null> {
    const [row] = await this.d.db
      .select({ c: paymentTopups.currency })
      .from(paymentTopups)
      .where(eq(paymentTopups.paymentIntentId, paymentIntentId));
    if (row) return row.c;
    const credit = await this.d.ledger.transferByKey('stripe', `pi:${paymentIntentId}`);
    return credit?.currency ?? null;
  }

  /** The user a PaymentIntent belongs to: the top-up row made with it, else its metadata. */
  private async ownerOf(paymentIntentId: string | null, metadata: unknown): Promise<string | null> {
    if (paymentIntentId) {
      const [row] = await this.d.db
        .select({ u: paymentTopups.userId })
        .from(paymentTopups)
        .where(eq(paymentTopups.paymentIntentId, paymentIntentId));
      if (row) return row.u;
    }
    const claimed = (metadata as Record<string, unknown> | null | undefined)?.hubbub_user_id;
    if (typeof claimed !== 'string' || !UUID.test(claimed)) return null;
    const [u] = await this.d.db.select({ id: users.id }).from(users).where(eq(users.id, claimed));
    return u?.id ?? null;
  }
}

const idOf = (v: unknown): string | null =>
  typeof v === 'string' && v.length <= 255
    ? v
    : typeof v === 'object' && v && typeof (v as { id?: unknown }).id === 'string'
      ? (v as { id: string }).id
      : null;
const isAmount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
