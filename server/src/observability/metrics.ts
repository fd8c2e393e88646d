import client from 'prom-client';
import { observeGcPauses, SendStages } from './send-stages.ts';

/**
 * One registry per process, built in the composition root and injected. Names carry `hubbub_`;
 * labels never hold user or conversation ids.
 */
export function createMetrics(opts: { collectDefault?: boolean } = {}) {
  const registry = new client.Registry();
  if (opts.collectDefault !== false) {
    // prom-client's names already start with `process_` or `nodejs_`: `hubbub_process_cpu_…`,
    // `hubbub_nodejs_eventloop_lag_…` (not `hubbub_process_process_…`).
    client.collectDefaultMetrics({ register: registry, prefix: 'hubbub_', eventLoopMonitoringPrecision: 20 });
    observeGcPauses(registry);
  }
  const sendStages = new SendStages();
  sendStages.register(registry);
  const appendWriteDrafts = new client.Histogram({
    name: 'hubbub_append_write_drafts',
    help: 'Events per message-store write (group commit: one statement and one commit on PostgreSQL)',
    buckets: [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128, 512],
    registers: [registry],
  });
  const trpcCalls = new client.Counter({
    name: 'hubbub_trpc_calls_total',
    help: 'tRPC calls by procedure and result code',
    labelNames: ['procedure', 'code'] as const,
    registers: [registry],
  });
  const trpcDuration = new client.Histogram({
    name: 'hubbub_trpc_duration_seconds',
    help: 'tRPC call latency by procedure',
    labelNames: ['procedure'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const connections = new client.Gauge({
    name: 'hubbub_ws_connections',
    help: 'Open WebSocket connections on this replica',
    registers: [registry],
  });
  const framesIn = new client.Counter({
    name: 'hubbub_ws_frames_in_total',
    help: 'Frames received from clients, by type',
    labelNames: ['type'] as const,
    registers: [registry],
  });
  // Counted with a plain integer on the hot path (one per frame per socket); read at scrape time.
  const wire = { framesOut: 0 };
  const framesOut = new client.Counter({
    name: 'hubbub_ws_frames_out_total',
    help: 'Frames sent to clients',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(wire.framesOut);
    },
  });
  const eventsPublished = new client.Counter({
    name: 'hubbub_events_published_total',
    help: 'Conversation events made durable and published by this replica',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  const eventsDelivered = new client.Counter({
    name: 'hubbub_events_delivered_total',
    help: 'Conversation event frames written to sockets on this replica',
    registers: [registry],
  });
  const deliverLatency = new client.Histogram({
    name: 'hubbub_send_to_deliver_seconds',
    help: 'From the send frame arriving at its hub to the event frame leaving a receiving hub',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const closes = new client.Counter({
    name: 'hubbub_ws_closes_total',
    help: 'Sockets closed by the server, by reason',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const gapFills = new client.Counter({
    name: 'hubbub_gap_fills_total',
    help: 'Out-of-order bus events that made a hub read the store to fill a gap',
    registers: [registry],
  });
  const paymentsTopups = new client.Counter({
    name: 'hubbub_payments_topups_total',
    help: 'Wallet top-ups: PaymentIntents created, credited by webhook, Stripe errors',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const paymentsWebhooks = new client.Counter({
    name: 'hubbub_payments_webhook_events_total',
    help: 'Stripe webhook deliveries by event type (handled types, else other) and outcome',
    labelNames: ['type', 'outcome'] as const,
    registers: [registry],
  });
  const paymentsTransfers = new client.Counter({
    name: 'hubbub_payments_transfers_total',
    help: 'Ledger transfers asked for by users and jobs, by kind and outcome (ok, replayed, refused)',
    labelNames: ['kind', 'outcome'] as const,
    registers: [registry],
  });
  const paymentsLedgerRetries = new client.Counter({
    name: 'hubbub_payments_ledger_retries_total',
    help: 'Ledger transactions retried after a serialization failure or deadlock',
    registers: [registry],
  });
  return {
    registry,
    sendStages,
    appendWriteDrafts,
    paymentsTopups,
    paymentsWebhooks,
    paymentsTransfers,
    paymentsLedgerRetries,
    wire,
    trpcCalls,
    trpcDuration,
    connections,
    framesIn,
    framesOut,
    eventsPublished,
    eventsDelivered,
    deliverLatency,
    closes,
    gapFills,
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
