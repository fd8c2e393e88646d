import type { EventFrame } from '@hubbub/client';
import type { Chat } from './chat.ts';
import { h, replace, timeOf } from './dom.ts';
import { registerPanel } from './panels.ts';
import { errorSentence, w } from './words.ts';

/** A plan's real-time limits, as `payments.plans`, `payments.entitlements` and the `limits` frame carry them. */
interface Limits {
  sendRatePerS: number;
  sendBurst: number;
  connectionsPerUser: number;
  groupMembers: number;
  historyDepth: number;
}
interface Plan {
  id: string;
  name: string;
  price: number;
  periodDays: number;
  limits: Limits;
}
interface Entitlement {
  plan: string;
  until: string | null;
  autoRenew: boolean;
  limits: Limits;
}
interface HistoryItem {
  transferId: string;
  kind: string;
  amount: number;
  ts: string;
  counterparty?: string;
  conversationId?: string;
}

/** What the wallet panel shows; one per signed-in page, kept across tab switches. */
interface WalletState {
  currency: string;
  balance: number | null;
  debt: number;
  history: HistoryItem[];
  plans: Plan[];
  ent: Entitlement | null;
  /** The last action's outcome or refusal, in words. */
  message: string;
  error: string;
  /** The idempotency key of the top-up being attempted, with the amount it was made for. */
  topUp: { key: string; amount: number } | null;
}

const states = new WeakMap<Chat, WalletState>();
const views = new WeakMap<Chat, HTMLElement>();

/** Minor units as money: 1234 usd → $12.34 (the currency's own number of decimals). */
export function money(minor: number, currency: string) {
  let fmt: Intl.NumberFormat;
  try {
    fmt = new Intl.NumberFormat('en', { style: 'currency', currency: currency.toUpperCase() });
  } catch {
    return `${minor} ${currency}`;
  }
  const digits = fmt.resolvedOptions().maximumFractionDigits ?? 2;
  return fmt.format(minor / 10 ** digits);
}

/** A typed amount in major units ("1.50") as minor units of the currency, or null when it is not one. */
export function parseMoney(text: string, currency: string): number | null {
  const t = text.trim().replace(/^[$€£]/, '');
  if (!/^\d{1,10}(\.\d{1,3})?$/.test(t)) return null;
  let digits = 2;
  try {
    digits =
      new Intl.NumberFormat('en', { style: 'currency', currency: currency.toUpperCase() }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    // unknown currency: cents
  }
  const [whole, frac = ''] = t.split('.');
  if (frac.length > digits) return null;
  const minor = Number(whole) * 10 ** digits + Number(frac.padEnd(digits, '0') || '0');
  return Number.isSafeInteger(minor) && minor > 0 ? minor : null;
}

const code = (err: unknown) => (err as { data?: { code?: string } }).data?.code;

/** A payments refusal in words (the server's terse reasons made into sentences for a person). */
export function paymentError(err: unknown): string {
  const m = err instanceof Error ? err.message : '';
  if (code(err) === 'PRECONDITION_FAILED') {
    if (m.includes('insufficient balance')) return w.lowBalance;
    if (m.includes('owe')) return w.inDebt;
    if (m.includes('not configured')) return w.paymentsOff;
  }
  return errorSentence(err);
}

export function stateOf(chat: Chat): WalletState {
  let s = states.get(chat);
  if (s) return s;
  s = { currency: 'usd', balance: null, debt: 0, history: [], plans: [], ent: null, message: '', error: '', topUp: null };
  states.set(chat, s);
  const st = s;
  // A tip to or from me changes my balance: refresh it (the payer's page and the payee's).
  chat.socket.on('event', (e: EventFrame) => {
    if (e.kind === 'system' && e.subtype === 'tip' && (e.from === chat.me.id || e.to === chat.me.id)) void refresh(chat);
  });
  // A plan change (bought here, in another tab, renewed or expired) arrives as a `limits` frame.
  chat.socket.on('limits', (f) => {
    st.ent = { plan: f.plan, until: f.until, autoRenew: st.ent?.plan === f.plan ? st.ent.autoRenew : f.plan !== 'free', limits: f.limits };
    redraw(chat);
    void refresh(chat);
  });
  return s;
}

/** Reloads balance, history, plans and entitlements, then redraws the panel if it is on screen. */
export async function refresh(chat: Chat) {
  const s = stateOf(chat);
  const api = chat.session.api.payments;
  try {
    const [b, hist, plans, ent] = await Promise.all([
      api.balance.query(),
      api.history.query({ limit: 20 }),
      s.plans.length ? Promise.resolve(s.plans) : api.plans.query(),
      api.entitlements.query(),
    ]);
    s.currency = b.currency;
    s.balance = b.balance;
    s.debt = b.debt;
    s.history = hist.items;
    s.plans = plans;
    s.ent = ent;
    await chat.loadProfiles(hist.items.flatMap((i) => (i.counterparty ? [i.counterparty] : [])));
  } catch (err) {
    s.error = paymentError(err);
  }
  redraw(chat);
}

function redraw(chat: Chat) {
  const el = views.get(chat);
  if (el?.isConnected && el.querySelector('[data-testid="wallet"]')) draw(chat, el);
}

function limitsText(l: Limits) {
  return w.limits(l);
}

function historyLine(chat: Chat, i: HistoryItem, currency: string) {
  const who = i.counterparty ? chat.name(i.counterparty) : '';
  const what = i.kind === 'tip' ? (i.amount < 0 ? w.tipToName(who) : w.tipFromName(who)) : (w.paymentKinds[i.kind] ?? i.kind);
  return h(
    'li',
    { 'data-testid': 'history-item', 'data-kind': i.kind },
    h('span', { class: 'grow' }, what, h('small', {}, ' ' + timeOf(Date.parse(i.ts)))),
    h('span', { class: i.amount < 0 ? 'amount out' : 'amount in' }, (i.amount > 0 ? '+' : '') + money(i.amount, currency)),
  );
}

async function act(chat: Chat, fn: () => Promise<string>) {
  const s = stateOf(chat);
  s.error = '';
  s.message = '';
  redraw(chat);
  try {
    s.message = await fn();
  } catch (err) {
    s.error = paymentError(err);
  }
  await refresh(chat);
}

function draw(chat: Chat, el: HTMLElement) {
  const s = stateOf(chat);
  const cur = s.currency;
  const ent = s.ent;
  const plan = ent ? s.plans.find((p) => p.id === ent.plan) : undefined;
  const amount = h('input', {
    inputmode: 'decimal',
    id: 'topup-amount',
    placeholder: w.topUpAmount,
    'data-testid': 'topup-amount',
    autocomplete: 'off',
  });
  const topUp = h(
    'form',
    { class: 'row' },
    h('label', { for: 'topup-amount', class: 'sr-only' }, w.amountLabel),
    amount,
    h('button', { type: 'submit', 'data-testid': 'topup' }, w.topUp),
  );
  topUp.onsubmit = (ev) => {
    ev.preventDefault();
    const minor = parseMoney(amount.value, cur);
    if (minor === null) return void ((s.error = w.typeTopUpAmount), redraw(chat));
    // One key per attempt: pressing again for the same amount (after a timeout) is the same top-up.
    if (s.topUp?.amount !== minor) s.topUp = { key: crypto.randomUUID(), amount: minor };
    const key = s.topUp.key;
    void act(chat, async () => {
      const r = await chat.session.api.payments.createTopUp.mutate({ amount: minor, idempotencyKey: key });
      s.topUp = null;
      return w.topUpCreated(r.paymentIntentId, money(r.amount, r.currency));
    });
  };
  replace(
    el,
    h(
      'section',
      { class: 'wallet', 'data-testid': 'wallet' },
      h('h2', {}, w.balance),
      h('p', { class: 'balance', 'data-testid': 'balance' }, s.balance === null ? w.loading : money(s.balance, cur)),
      s.debt ? h('p', { class: 'error', 'data-testid': 'debt' }, w.owe(money(s.debt, cur))) : null,
      topUp,
      h('p', { class: 'error', role: 'alert', 'data-testid': 'wallet-error' }, s.error),
      h('p', { class: 'ok', role: 'status', 'data-testid': 'wallet-message' }, s.message),
      h('h2', {}, w.plan),
      ent
        ? h(
            'div',
            { class: 'entitlement', 'data-testid': 'entitlement', 'data-plan': ent.plan },
            h('strong', { 'data-testid': 'plan-name' }, plan?.name ?? ent.plan),
            ent.until
              ? h(
                  'small',
                  {},
                  ' ' +
                    (ent.autoRenew ? w.renews : w.ends)(
                      new Date(ent.until).toLocaleDateString('en', { month: 'short', day: 'numeric', year: 'numeric' }),
                    ),
                )
              : null,
            h('p', { class: 'limits', 'data-testid': 'limits' }, limitsText(ent.limits)),
            ent.plan !== 'free' && ent.autoRenew
              ? h(
                  'button',
                  {
                    type: 'button',
                    'data-testid': 'cancel-plan',
                    onclick: () => void act(chat, async () => (await chat.session.api.payments.cancel.mutate(), w.renewalOff)),
                  },
                  w.cancelRenewal,
                )
              : null,
          )
        : h('p', {}, w.loading),
      h(
        'ul',
        { class: 'results plans', 'data-testid': 'plans' },
        s.plans
          .filter((p) => p.price > 0)
          .map((p) => {
            const current = ent?.plan === p.id;
            return h(
              'li',
              { 'data-testid': 'plan', 'data-plan': p.id },
              h(
                'span',
                { class: 'grow' },
                h('strong', {}, p.name),
                h('small', {}, ` ${w.perPeriod(money(p.price, cur), p.periodDays)}`),
                h('br'),
                h('small', {}, limitsText(p.limits)),
              ),
              current && ent?.autoRenew
                ? h('small', {}, w.current)
                : h(
                    'button',
                    {
                      type: 'button',
                      'data-testid': 'subscribe',
                      onclick: () => {
                        const key = crypto.randomUUID();
                        void act(chat, async () => {
                          const e = await chat.session.api.payments.subscribe.mutate({ planId: p.id, idempotencyKey: key });
                          s.ent = e;
                          return current ? w.renewsAgain(p.name) : w.nowOn(p.name);
                        });
                      },
                    },
                    current ? w.resume : w.subscribe,
                  ),
            );
          }),
      ),
      h('h2', {}, w.history),
      s.history.length
        ? h(
            'ul',
            { class: 'results history', 'data-testid': 'history' },
            s.history.map((i) => historyLine(chat, i, cur)),
          )
        : h('p', { class: 'empty' }, w.noPayments),
    ),
  );
}

registerPanel({
  id: 'wallet',
  label: w.wallet,
  attach: (chat) => void stateOf(chat),
  render(chat, el) {
    views.set(chat, el);
    el.onclick = null;
    draw(chat, el);
    void refresh(chat);
  },
});
