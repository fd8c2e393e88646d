import { Agent } from 'node:https';
import type { Transporter } from 'nodemailer';
import type { Config } from '../../server/src/config.ts';
import type { Db } from '../../server/src/db/database.ts';
import { DeliveryLog } from '../../server/src/notify/delivery-log.ts';
import { guardedLookup } from '../../server/src/notify/net-guard.ts';
import { SendPlanner } from '../../server/src/notify/send-plan.ts';
import { UnsubscribeTokens } from '../../server/src/notify/unsubscribe-token.ts';
import type { VapidKeys } from '../../server/src/notify/vapid.ts';
import type { Logger } from '../../server/src/observability/logger.ts';
import type { NotifyMetrics } from '../../server/src/observability/notify-metrics.ts';
import type { MessageStore } from '../../server/src/store/message-store.ts';
import { processEmail } from './processors/email.ts';
import type { JobContext, NotifyDeps, Outcome } from './processors/outcome.ts';
import { processPush } from './processors/push.ts';
import { processWebhook } from './processors/webhook.ts';
import type { Channel, NotifyJob } from './queues.ts';

const processors: Record<Channel, (d: NotifyDeps, j: NotifyJob, c: JobContext) => Promise<Outcome>> = {
  push: processPush,
  email: processEmail,
  webhook: processWebhook,
};

/** Runs one notification job (BullMQ worker or in-process alike) and counts its outcome. */
export async function runNotifyJob(channel: Channel, d: NotifyDeps, job: NotifyJob, ctx: JobContext): Promise<Outcome> {
  try {
    const r = await processors[channel](d, job, ctx);
    d.metrics.jobs.inc({ channel, outcome: r.outcome });
    return r;
  } catch (err) {
    d.metrics.jobs.inc({ channel, outcome: 'retry' });
    throw err;
  }
}

/** Test and deployment seams of the processors. */
export interface NotifyOverrides {
  /** Extra CA certificates trusted by the push and webhook agent (tests' self-signed endpoints). */
  ca?: string | Buffer;
  now?: () => Date;
}

/** An SMTP transport that loads nodemailer (about 15 MB resident) with the first email, not at start. */
function lazyMailer(url: string): Pick<Transporter, 'sendMail'> {
  let transport: Promise<Transporter> | null = null;
  return {
    sendMail: async (mail) => (await (transport ??= import('nodemailer').then((m) => m.default.createTransport(url)))).sendMail(mail),
  };
}

/** Builds the processors' dependencies from the configuration (each process's composition root calls it once). */
export function notifyDeps(c: {
  config: Config;
  db: Db;
  store: MessageStore;
  logger: Logger;
  metrics: NotifyMetrics;
  vapid: VapidKeys | null;
  secret: string;
  overrides?: NotifyOverrides;
}): NotifyDeps {
  const allowPrivate = c.config.WEBHOOK_ALLOW_PRIVATE;
  return {
    db: c.db,
    planner: new SendPlanner({ db: c.db, store: c.store }),
    log: new DeliveryLog(c.db),
    logger: c.logger,
    metrics: c.metrics,
    now: c.overrides?.now ?? (() => new Date()),
    publicUrl: c.config.PUBLIC_URL,
    vapid: c.vapid,
    mailer: c.config.SMTP_URL ? lazyMailer(c.config.SMTP_URL) : null,
    mailFrom: c.config.SMTP_FROM,
    unsubscribe: new UnsubscribeTokens(c.secret, c.config.PUBLIC_URL),
    agent: new Agent({ keepAlive: true, maxSockets: 64, lookup: guardedLookup(allowPrivate), ...(c.overrides?.ca ? { ca: c.overrides.ca } : {}) }),
    allowPrivate,
  };
}
