import type { Logger } from '../observability/logger.ts';
import type { RepeatingJob } from './repeating-job.ts';

/** Without Redis there is no BullMQ: the hub runs the same jobs on timers (`npm start` alone has them). */
// biome-ignore lint/suspicious/noExplicitAny: one list holds jobs whose payload types differ
export function runRepeatingJobs(jobs: RepeatingJob<any>[], logger: Logger) {
  const timers = jobs.map((job) =>
    setInterval(() => {
      job.run(job.payload.parse(job.data)).catch((err) => logger.warn({ err, queue: job.queue }, 'repeating job failed'));
    }, job.everyMs).unref(),
  );
  return {
    close() {
      for (const t of timers) clearInterval(t);
    },
  };
}
