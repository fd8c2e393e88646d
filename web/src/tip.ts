import type { EventFrame } from '@hubbub/client';
import type { Chat, Conv } from './chat.ts';
import { modal } from './dialogs.ts';
import { h } from './dom.ts';
import { money, paymentError, parseMoney, refresh, stateOf } from './wallet.ts';

/** A tip's `system` event as a line: "Alice Archer tipped you $1.50: “thanks”". */
export function tipText(chat: Chat, e: EventFrame): string | null {
  if (e.kind !== 'system' || e.subtype !== 'tip') return null;
  const from = typeof e.from === 'string' ? e.from : null;
  const to = typeof e.to === 'string' ? e.to : null;
  const amount = typeof e.amount === 'number' ? money(e.amount, typeof e.currency === 'string' ? e.currency : 'usd') : 'money';
  const payee = to === chat.me.id ? 'you' : chat.name(to);
  const note = typeof e.note === 'string' && e.note ? `: “${e.note}”` : '';
  return `${chat.name(from)} tipped ${payee} ${amount}${note}`;
}

/**
 * Tip a member of the open conversation: amount, optional note. One idempotency key per attempt:
 * pressing Send again after a timeout or a dropped connection reuses it (the server answers with
 * the first tip), and changing the payee, amount or note makes a new attempt with a new key.
 */
export function tipDialog(chat: Chat, c: Conv) {
  const s = stateOf(chat);
  const others = c.members.filter((m) => m.userId !== chat.me.id);
  const error = h('p', { class: 'error', role: 'alert', 'data-testid': 'tip-error' });
  const to = h(
    'select',
    { 'data-testid': 'tip-to' },
    others.map((m) => h('option', { value: m.userId }, chat.name(m.userId))),
  );
  const amount = h('input', { inputmode: 'decimal', placeholder: 'Amount, e.g. 1.50', 'data-testid': 'tip-amount', autocomplete: 'off' });
  const note = h('input', { maxlength: 200, placeholder: 'Note (optional)', 'data-testid': 'tip-note', autocomplete: 'off' });
  const send = h('button', { type: 'submit', class: 'primary', 'data-testid': 'tip-send' }, 'Send tip');
  const balance = h('small', { 'data-testid': 'tip-balance' }, s.balance === null ? '' : `Your balance: ${money(s.balance, s.currency)}`);
  let attempt: { key: string; sig: string } | null = null;
  const form = h('form', { class: 'stack' }, others.length > 1 ? to : h('p', {}, `To ${chat.name(others[0]?.userId ?? null)}`), amount, note, balance, error, send);
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    const toUserId = to.value;
    if (!toUserId) return void (error.textContent = 'There is no one else here to tip.');
    const minor = parseMoney(amount.value, s.currency);
    if (minor === null) return void (error.textContent = 'Type an amount, such as 1.50.');
    const sig = JSON.stringify([toUserId, minor, note.value.trim()]);
    if (attempt?.sig !== sig) attempt = { key: crypto.randomUUID(), sig };
    send.disabled = true;
    try {
      await chat.session.api.payments.tip.mutate({ conversationId: c.id, toUserId, amount: minor, idempotencyKey: attempt.key, ...(note.value.trim() ? { note: note.value.trim() } : {}) });
      dlg.close();
    } catch (err) {
      // No answer (a dropped connection, a timeout): the tip may have gone through; the same key makes a retry safe.
      const unanswered = !(err as { data?: { code?: string } }).data?.code;
      error.textContent = unanswered ? 'No answer from the server, so the tip may or may not have gone through. Press Send tip again: it is never sent twice.' : paymentError(err);
    } finally {
      send.disabled = false;
      void refresh(chat);
    }
  };
  const dlg = modal(`Tip in ${chat.title(c)}`, form, 'tip-dialog');
  amount.focus();
  if (s.balance === null) void refresh(chat).then(() => (balance.textContent = s.balance === null ? '' : `Your balance: ${money(s.balance, s.currency)}`));
}
