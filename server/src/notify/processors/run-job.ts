import type { NotifyChannel, NotifyJob } from '../notify-jobs.ts';
import { processEmail } from './email.ts';
import type { JobContext, NotifyDeps, Outcome } from './outcome.ts';
import { processPush } from './push.ts';
import { processWebhook } from './webhook.ts';

const processors: Record<NotifyChannel, (d: NotifyDeps, j: NotifyJob, c: JobContext) => Promise<Outcome>> = {
  push: processPush,
  email: processEmail,
  webhook: processWebhook,
};

/** Runs one notification job (BullMQ worker or in-process alike) and counts its outcome. */
export async function runNotifyJob(channel: NotifyChannel, d: NotifyDeps, job: NotifyJob, ctx: JobContext): Promise<Outcome> {
  try {
    const r = await processors[channel](d, job, ctx);
    d.metrics.jobs.inc({ channel, outcome: r.outcome });
    return r;
  } catch (err) {
    d.metrics.jobs.inc({ channel, outcome: 'retry' });
    throw err;
  }
}
