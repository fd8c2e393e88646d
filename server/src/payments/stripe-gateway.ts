import Stripe from 'stripe';

/** Stripe's own tolerance for a signature's timestamp (seconds). */
export const SIGNATURE_TOLERANCE_S = 300;

export interface CreatedIntent {
  id: string;
  clientSecret: string;
  amount: number;
  currency: string;
}

/**
 * The calls Hubbub makes to Stripe, through the `stripe` package. `apiUrl` points the client at
 * another API server (stripe-mock in tests).
 */
export class StripeGateway {
  private readonly stripe: Stripe;

  constructor(opts: { secretKey: string; apiUrl?: string; timeoutMs?: number }) {
    const url = opts.apiUrl ? new URL(opts.apiUrl) : null;
    this.stripe = new Stripe(opts.secretKey, {
      maxNetworkRetries: 2,
      timeout: opts.timeoutMs ?? 20_000,
      telemetry: false,
      ...(url
        ? { host: url.hostname, port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)), protocol: url.protocol === 'https:' ? 'https' : 'http' }
        : {}),
    });
  }

  /** A PaymentIntent for a wallet top-up; the idempotency key goes to Stripe so a retry makes no second intent. */
  async createTopUpIntent(a: { userId: string; amount: number; currency: string; idempotencyKey: string }): Promise<CreatedIntent> {
    const pi = await this.stripe.paymentIntents.create(
      {
        amount: a.amount,
        currency: a.currency,
        automatic_payment_methods: { enabled: true },
        metadata: { hubbub_user_id: a.userId, hubbub_purpose: 'wallet_topup' },
      },
      { idempotencyKey: a.idempotencyKey },
    );
    if (!pi.client_secret) throw new Error('Stripe returned a PaymentIntent without a client secret');
    return { id: pi.id, clientSecret: pi.client_secret, amount: pi.amount, currency: pi.currency };
  }
}

/** Verifies a webhook's `Stripe-Signature` over the raw body; throws on a bad or stale signature. */
export async function verifyStripeEvent(raw: Buffer, signature: string, secret: string, nowS?: number) {
  return verifier.webhooks.constructEventAsync(raw, signature, secret, SIGNATURE_TOLERANCE_S, undefined, nowS);
}

// Signature checks need no API key; the client is only the holder of `webhooks`.
const verifier = new Stripe('sk_unused_for_signature_checks');

export type StripeEvent = Stripe.Event;
