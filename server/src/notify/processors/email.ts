import { isSkip, type ConversationPlan } from '../send-plan.ts';
import type { Delivery } from '../delivery-log.ts';
import type { NotifyJob } from '../notify-jobs.ts';
import { RetryLater, sendAll, type JobContext, type NotifyDeps, type Outcome } from './outcome.ts';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/**
 * Names and titles on one line in the text part (ones saved before the one-line rule may hold
 * line breaks, which would forge lines of the digest); a body's later lines indented under it.
 */
export const oneLine = (s: string) => s.replace(/[\p{Cc}\u2028\u2029]+/gu, ' ');
const indented = (s: string) => s.replace(/\r\n?|[\n\u2028\u2029]/g, '\n    ');

/** The digest, text and HTML, grouped by conversation, with the unsubscribe link. */
export function renderDigest(plans: ConversationPlan[], links: { app: string; unsubscribe: string }) {
  const total = plans.reduce((n, p) => n + p.count, 0);
  const subject = `${total} unread message${total === 1 ? '' : 's'} in ${plans.length} conversation${plans.length === 1 ? '' : 's'}`;
  const convUrl = (p: ConversationPlan) => new URL(`/#/c/${p.conv}`, links.app).toString();
  const text = [
    subject,
    '',
    ...plans.flatMap((p) => [
      `${oneLine(p.title)} (${p.count} new${p.mentioned ? ', you were mentioned' : ''})`,
      ...p.recent.map((r) => `  ${oneLine(r.from)}: ${indented(r.body ?? '(message)')}`),
      `  ${convUrl(p)}`,
      '',
    ]),
    `Stop these emails: ${links.unsubscribe}`,
  ].join('\n');
  const html = [
    `<!doctype html><html><body><h1>${esc(subject)}</h1>`,
    ...plans.map(
      (p) =>
        `<h2><a href="${esc(convUrl(p))}">${esc(p.title)}</a> (${p.count} new${p.mentioned ? ', you were mentioned' : ''})</h2><ul>` +
        p.recent.map((r) => `<li><b>${esc(r.from)}</b>: ${esc(r.body ?? '(message)')}</li>`).join('') +
        '</ul>',
    ),
    `<p><a href="${esc(links.unsubscribe)}">Stop these emails</a></p></body></html>`,
  ].join('\n');
  return { subject, text, html };
}

/**
 * One email digest per user: everything still unread (and not already emailed) in every
 * conversation, after the send-time re-check of each.
 */
export async function processEmail(d: NotifyDeps, job: NotifyJob, ctx: JobContext): Promise<Outcome> {
  let sent = await sendAll(
    await d.log.pending(job.user, 'email', null),
    (c) => sendOne(d, c),
    ctx.final,
    (c, err) => d.log.finish(c.id, 'failed', `gave up: ${err.message}`, true),
  );
  const u = await d.planner.user(job.user);
  if (!u || u.deleted || !u.email) return { outcome: 'skipped', reason: 'no such user' };
  if (!u.channelOn.email || !d.mailer) return sent ? { outcome: 'sent', sent } : { outcome: 'skipped', reason: 'email off' };
  const now = d.now();
  const quiet = d.planner.quietUntil(u, now);
  if (quiet) return { outcome: 'postponed', until: quiet.getTime() };
  const plans: ConversationPlan[] = [];
  const pc = await d.planner.pendingConversations(job.user, 'email');
  for (const conv of pc) {
    const p = await d.planner.conversation(job.user, conv, 'email', u, now);
    if (!isSkip(p)) plans.push(p);
  }
  if (!plans.length) return sent ? { outcome: 'sent', sent } : { outcome: 'skipped', reason: 'nothing unread to email' };
  const unsubscribe = d.unsubscribe.url(job.user);
  const digest = renderDigest(plans, { app: d.publicUrl, unsubscribe });
  const claimed = await d.log.claim({
    userId: job.user,
    channel: 'email',
    conv: null,
    plans,
    targets: [''],
    payload: () => ({ to: u.email, unsubscribe, ...digest }),
  });
  if (!claimed) return sent ? { outcome: 'sent', sent } : { outcome: 'skipped', reason: 'claimed by another run' };
  sent += await sendAll(
    claimed,
    (c) => sendOne(d, c),
    ctx.final,
    (c, err) => d.log.finish(c.id, 'failed', `gave up: ${err.message}`, true),
  );
  return { outcome: 'sent', sent };
}

async function sendOne(d: NotifyDeps, c: Delivery) {
  if (!d.mailer) throw new RetryLater('SMTP is not configured');
  const p = c.payload as { to: string; subject: string; text: string; html: string; unsubscribe: string };
  const started = performance.now();
  try {
    await d.mailer.sendMail({
      from: d.mailFrom,
      to: p.to,
      subject: p.subject,
      text: p.text,
      html: p.html,
      // The delivery id: a copy re-sent after a crash carries the same Message-ID.
      messageId: `<${c.id}@hubbub.notifications>`,
      headers: { 'List-Unsubscribe': `<${p.unsubscribe}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' },
    });
    d.metrics.sendSeconds.observe({ channel: 'email' }, (performance.now() - started) / 1000);
    await d.log.finish(c.id, 'sent');
  } catch (err) {
    const code = (err as { responseCode?: number }).responseCode;
    if (code && code >= 500) return d.log.finish(c.id, 'failed', `SMTP ${code}: ${(err as Error).message}`);
    await d.log.attempted(c.id, (err as Error).message);
    throw new RetryLater(`SMTP ${code ?? 'error'}: ${(err as Error).message}`);
  }
}
