import type Stripe from 'stripe';

/**
 * The `stripe` package, loaded on first use: a hub without STRIPE_SECRET_KEY never loads it
 * (about 20 MB resident), one with a key loads it as it starts (StripeGateway's constructor).
 */
let stripeModule: Promise<typeof import('stripe')> | null = null;
const loadStripe = () => (stripeModule ??= import('stripe'));

/** Stripe's own tolerance for a signature's timestamp (seconds). */
export const SIGNATURE_TOLERANCE_S = 300;

export interface CreatedIntent {
  id: string;
  clientSecret: string;
  amount: number;
  currency: string;
}

/** Stripe refused a request as invalid (bad amount, currency, a reused idempotency key): the caller's error, not an outage. */
export class StripeRefusedError extends Error {
  override name = 'StripeRefusedError';
}

/**
 * The calls Hubbub makes to Stripe, through the `stripe` package. `apiUrl` points the client at
 * another API server (stripe-mock in tests).
 */
export class StripeGateway {
  private readonly stripe: Promise<Stripe>;

  constructor(opts: { secretKey: string; apiUrl?: string; timeoutMs?: number }) {
    const url = opts.apiUrl ? new URL(opts.apiUrl) : null;
    this.stripe = loadStripe().then(
      ({ default: StripeClient }) =>
        new StripeClient(opts.secretKey, {
          maxNetworkRetries: 2,
          timeout: opts.timeoutMs ?? 20_000,
          telemetry: false,
          ...(url
            ? {
                host: url.hostname,
                port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
                protocol: url.protocol === 'https:' ? 'https' : 'http',
              }
            : {}),
        }),
    );
    // Awaited by each call; a load failure is reported there, not as an unhandled rejection.
    this.stripe.catch(() => {});
  }

  /** A PaymentIntent for a wallet top-up; the idempotency key goes to Stripe so a retry makes no second intent. */
  async createTopUpIntent(a: { userId: string; amount: number; currency: string; idempotencyKey: string }): Promise<CreatedIntent> {
    const { default: StripeClient } = await loadStripe();
    let pi: Stripe.PaymentIntent;
    try {
      pi = await (await this.stripe).paymentIntents.create(
        {
          amount: a.amount,
          currency: a.currency,
          automatic_payment_methods: { enabled: true },
          metadata: { hubbub_user_id: a.userId, hubbub_purpose: 'wallet_topup' },
        },
        { idempotencyKey: a.idempotencyKey },
      );
    } catch (err) {
      if (err instanceof StripeClient.errors.StripeInvalidRequestError || err instanceof StripeClient.errors.StripeIdempotencyError) {
        throw new StripeRefusedError(err.message);
      }
      throw err;
    }
    if (!pi.client_secret) throw new Error('Stripe returned a PaymentIntent without a client secret');
    return { id: pi.id, clientSecret: pi.client_secret, amount: pi.amount, currency: pi.currency };
  }
}

/** A webhook whose `Stripe-Signature` is missing, bad or stale. */
export class StripeSignatureError extends Error {
  override name = 'StripeSignatureError';
}

// Signature checks need no API key; the client is only the holder of `webhooks`.
let verifier: Stripe | null = null;

/** Verifies a webhook's `Stripe-Signature` over the raw body; throws StripeSignatureError on a bad or stale signature. */
export async function verifyStripeEvent(raw: Buffer, signature: string, secret: string, nowS?: number) {
  const { default: StripeClient } = await loadStripe();
  verifier ??= new StripeClient('sk_unused_for_signature_checks');
  try {
    return await verifier.webhooks.constructEventAsync(raw, signature, secret, SIGNATURE_TOLERANCE_S, undefined, nowS);
  } catch (err) {
    if (err instanceof StripeClient.errors.StripeSignatureVerificationError) throw new StripeSignatureError(err.message);
    throw err;
  }
}

export type StripeEvent = Stripe.Event;
