import client from 'prom-client';

/** Notification metrics (`hubbub_notify_*`), on the registry of the process that runs them. */
export function createNotifyMetrics(registry: client.Registry) {
  return {
    enqueued: new client.Counter({
      name: 'hubbub_notify_enqueued_total',
      help: 'Notification jobs offered to the queues (before coalescing), by channel',
      labelNames: ['channel'] as const,
      registers: [registry],
    }),
    jobs: new client.Counter({
      name: 'hubbub_notify_jobs_total',
      help: 'Notification jobs finished, by channel and outcome (sent, skipped, failed, postponed, retry)',
      labelNames: ['channel', 'outcome'] as const,
      registers: [registry],
    }),
    sendSeconds: new client.Histogram({
      name: 'hubbub_notify_send_seconds',
      help: 'Time to hand one notification to the push service, SMTP server or webhook receiver',
      labelNames: ['channel'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
  };
}
export type NotifyMetrics = ReturnType<typeof createNotifyMetrics>;

/**
 * The queues' depth, read from Redis at scrape time. Registered by the workers process only: the
 * queues are shared, so each process that exported them would report the same totals (and a
 * `sum` over hubs would count them once per replica), and each scrape costs a few Redis calls.
 * Several worker replicas still report the same value: aggregate with `max`, never `sum`.
 */
export function registerQueueDepth(registry: client.Registry, depth: () => Promise<Record<string, Record<string, number>>>) {
  return new client.Gauge({
    name: 'hubbub_notify_queue_depth',
    help: 'Notification jobs per queue and state (waiting, delayed, active, failed); the same on every worker replica',
    labelNames: ['channel', 'state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      try {
        for (const [channel, states] of Object.entries(await depth()))
          for (const [state, n] of Object.entries(states)) this.set({ channel, state }, n);
      } catch {
        // Redis away: the gauge is left empty for this scrape rather than failing it (the workers log Redis errors).
      }
    },
  });
}
