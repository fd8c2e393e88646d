import type { Config } from '../config.ts';
import type { Database, Db } from '../db/database.ts';
import type { UserControl } from '../hub/ports.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { AppendResult, EventDraft } from '../store/message-store.ts';
import { Entitlements } from './entitlements.ts';
import { Ledger } from './ledger.ts';
import { PaymentsService } from './payments-service.ts';
import { loadPlans } from './plans.ts';
import { StripeGateway } from './stripe-gateway.ts';
import { StripeWebhooks } from './webhooks.ts';

/** Builds the payments domain from the config, for a hub replica, the workers or a script. */
export function openPayments(
  config: Config,
  d: {
    db: Db;
    database: Pick<Database, 'query'>;
    logger: Logger;
    metrics?: Metrics;
    controlUser(userId: string, msg: UserControl): Promise<void>;
    writeEvent(conv: string, draft: EventDraft): Promise<AppendResult>;
    now?: () => number;
  },
) {
  const now = d.now ?? Date.now;
  const plans = loadPlans(config);
  const ledger = new Ledger({
    db: d.db,
    currency: config.PAYMENTS_CURRENCY,
    logger: d.logger,
    onRetry: () => d.metrics?.paymentsLedgerRetries.inc(),
  });
  const entitlements = new Entitlements({ db: d.db, plans, now, controlUser: d.controlUser });
  const gateway = config.STRIPE_SECRET_KEY
    ? new StripeGateway({ secretKey: config.STRIPE_SECRET_KEY, apiUrl: config.STRIPE_API_URL })
    : null;
  const payments = new PaymentsService({
    db: d.db,
    database: d.database,
    ledger,
    entitlements,
    gateway,
    writeEvent: d.writeEvent,
    plans,
    topUp: { min: config.TOPUP_MIN, max: config.TOPUP_MAX },
    logger: d.logger,
    metrics: d.metrics,
    now,
  });
  const webhooks = new StripeWebhooks({
    db: d.db,
    ledger,
    payments,
    secret: config.STRIPE_WEBHOOK_SECRET,
    currency: config.PAYMENTS_CURRENCY,
    logger: d.logger,
    metrics: d.metrics,
  });
  return { ledger, entitlements, payments, webhooks, plans };
}
