import type { EventFrame } from '@hubbub/client';
import type { Chat, Conv } from './chat.ts';
import { modal } from './dialogs.ts';
import { h } from './dom.ts';
import { money, paymentError, parseMoney, refresh, stateOf } from './wallet.ts';
import { w } from './words.ts';

/** A tip's `system` event as a line: "Alice Archer tipped you $1.50: “thanks”". */
export function tipText(chat: Chat, e: EventFrame): string | null {
  if (e.kind !== 'system' || e.subtype !== 'tip') return null;
  const from = typeof e.from === 'string' ? e.from : null;
  const to = typeof e.to === 'string' ? e.to : null;
  const amount = typeof e.amount === 'number' ? money(e.amount, typeof e.currency === 'string' ? e.currency : 'usd') : 'money';
  const note = typeof e.note === 'string' && e.note ? e.note : null;
  return w.tipped(chat.name(from), chat.nameObject(to), amount, note);
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
    { 'data-testid': 'tip-to', 'aria-label': w.tipToLabel },
    others.map((m) => h('option', { value: m.userId }, chat.name(m.userId))),
  );
  const amount = h('input', {
    inputmode: 'decimal',
    placeholder: w.tipAmount,
    'aria-label': w.amountLabel,
    'data-testid': 'tip-amount',
    autocomplete: 'off',
  });
  const note = h('input', {
    maxlength: 200,
    placeholder: w.tipNote,
    'aria-label': w.tipNote,
    'data-testid': 'tip-note',
    autocomplete: 'off',
  });
  const send = h('button', { type: 'submit', class: 'primary', 'data-testid': 'tip-send' }, w.sendTip);
  const balance = h('small', { 'data-testid': 'tip-balance' }, s.balance === null ? '' : w.yourBalance(money(s.balance, s.currency)));
  let attempt: { key: string; sig: string } | null = null;
  const form = h(
    'form',
    { class: 'stack' },
    others.length > 1 ? to : h('p', {}, w.tipTo(chat.name(others[0]?.userId ?? null))),
    amount,
    note,
    balance,
    error,
    send,
  );
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    const toUserId = to.value;
    if (!toUserId) return void (error.textContent = w.nobodyToTip);
    const minor = parseMoney(amount.value, s.currency);
    if (minor === null) return void (error.textContent = w.typeTipAmount);
    const sig = JSON.stringify([toUserId, minor, note.value.trim()]);
    if (attempt?.sig !== sig) attempt = { key: crypto.randomUUID(), sig };
    send.disabled = true;
    try {
      await chat.session.api.payments.tip.mutate({
        conversationId: c.id,
        toUserId,
        amount: minor,
        idempotencyKey: attempt.key,
        ...(note.value.trim() ? { note: note.value.trim() } : {}),
      });
      dlg.close();
    } catch (err) {
      // No answer (a dropped connection, a timeout): the tip may have gone through; the same key makes a retry safe.
      const unanswered = !(err as { data?: { code?: string } }).data?.code;
      error.textContent = unanswered ? w.tipUnanswered : paymentError(err);
    } finally {
      send.disabled = false;
      void refresh(chat);
    }
  };
  const dlg = modal(w.tipTitle(c.kind === 'direct', chat.title(c)), form, 'tip-dialog');
  amount.focus();
  if (s.balance === null)
    void refresh(chat).then(() => (balance.textContent = s.balance === null ? '' : w.yourBalance(money(s.balance, s.currency))));
}
