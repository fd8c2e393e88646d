import type { NotifyChannel, NotifyJob, SendJob, TargetChannel } from '../notify-jobs.ts';
import { processEmail } from './email.ts';
import type { JobContext, NotifyDeps, Outcome, SendContext } from './outcome.ts';
import { processPush, sendPush } from './push.ts';
import { processWebhook, sendWebhook } from './webhook.ts';

const processors: Record<NotifyChannel, (d: NotifyDeps, j: NotifyJob, c: JobContext) => Promise<Outcome>> = {
  push: processPush,
  email: processEmail,
  webhook: processWebhook,
};

const senders: Record<TargetChannel, (d: NotifyDeps, j: SendJob, c: SendContext) => Promise<Outcome>> = {
  push: sendPush,
  webhook: sendWebhook,
};

/** Runs one notification job (BullMQ worker or in-process alike) and counts its outcome. */
export function runNotifyJob(channel: NotifyChannel, d: NotifyDeps, job: NotifyJob, ctx: JobContext): Promise<Outcome> {
  return counted(channel, d, () => processors[channel](d, job, ctx));
}

/** Runs one send job (one delivery to one endpoint) and counts its outcome. */
export function runSendJob(channel: TargetChannel, d: NotifyDeps, job: SendJob, ctx: SendContext): Promise<Outcome> {
  return counted(channel, d, () => senders[channel](d, job, ctx));
}

async function counted(channel: NotifyChannel, d: NotifyDeps, run: () => Promise<Outcome>): Promise<Outcome> {
  try {
    const r = await run();
    d.metrics.jobs.inc({ channel, outcome: r.outcome });
    return r;
  } catch (err) {
    d.metrics.jobs.inc({ channel, outcome: 'retry' });
    throw err;
  }
}
