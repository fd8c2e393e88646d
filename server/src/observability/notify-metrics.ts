import client from 'prom-client';

/** Notification metrics (`hubbub_notify_*`), on the registry of the process that runs them. */
export function createNotifyMetrics(registry: client.Registry) {
  let depth: (() => Promise<Record<string, Record<string, number>>>) | null = null;
  const m = {
    enqueued: new client.Counter({ name: 'hubbub_notify_enqueued_total', help: 'Notification jobs offered to the queues (before coalescing), by channel', labelNames: ['channel'] as const, registers: [registry] }),
    jobs: new client.Counter({ name: 'hubbub_notify_jobs_total', help: 'Notification jobs finished, by channel and outcome (sent, skipped, failed, postponed, retry)', labelNames: ['channel', 'outcome'] as const, registers: [registry] }),
    sendSeconds: new client.Histogram({
      name: 'hubbub_notify_send_seconds',
      help: 'Time to hand one notification to the push service, SMTP server or webhook receiver',
      labelNames: ['channel'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    queueDepth: new client.Gauge({
      name: 'hubbub_notify_queue_depth',
      help: 'Notification jobs per queue and state (waiting, delayed, active, failed)',
      labelNames: ['channel', 'state'] as const,
      registers: [registry],
      async collect() {
        if (!depth) return;
        this.reset();
        try {
          for (const [channel, states] of Object.entries(await depth())) for (const [state, n] of Object.entries(states)) this.set({ channel, state }, n);
        } catch {
          // Redis away: the gauge is left empty for this scrape rather than failing it.
        }
      },
    }),
    /** The queue side reports its depth at scrape time. */
    setDepthSource(fn: () => Promise<Record<string, Record<string, number>>>) {
      depth = fn;
    },
  };
  return m;
}
export type NotifyMetrics = ReturnType<typeof createNotifyMetrics>;
