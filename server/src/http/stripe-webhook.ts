import type { Logger } from '../observability/logger.ts';
import type { StripeWebhooks } from '../payments/webhooks.ts';
import type { TemplatedApp } from '../uws.ts';
import { BodyTooLarge, readBody } from './read-body.ts';

const STATUS: Record<number, string> = {
  200: '200 OK',
  400: '400 Bad Request',
  413: '413 Payload Too Large',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

/**
 * `POST /webhooks/stripe`: the raw body (the signature covers its exact bytes) up to `maxBytes`
 * (413 past it), handed to StripeWebhooks. A failure while applying answers 500 so that Stripe
 * delivers again; the event id is recorded, and applying twice moves nothing twice.
 */
export function registerStripeWebhook(app: TemplatedApp, d: { webhooks: StripeWebhooks; maxBytes: number; logger: Logger }) {
  app.post('/webhooks/stripe', (res, req) => {
    const signature = req.getHeader('stripe-signature') || undefined;
    const declared = Number(req.getHeader('content-length') || 0);
    let aborted = false;
    res.onAborted(() => (aborted = true));
    const reply = (status: number, body: unknown) => {
      if (aborted) return;
      aborted = true;
      res.cork(() => {
        res
          .writeStatus(STATUS[status] ?? `${status} Error`)
          .writeHeader('content-type', 'application/json')
          .end(JSON.stringify(body));
      });
    };
    if (declared > d.maxBytes) return reply(413, { error: 'body too large' });
    readBody(res, d.maxBytes)
      .then((raw) => d.webhooks.handle(raw, signature))
      .then((r) => reply(r.status, r.body))
      .catch((err) => {
        if (err instanceof BodyTooLarge) return reply(413, { error: 'body too large' });
        d.logger.error({ err }, 'stripe webhook failed');
        reply(500, { error: 'internal error, deliver again' });
      });
  });
}
