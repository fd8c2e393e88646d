import type { Chat } from './chat.ts';
import { h, replace } from './dom.ts';
import { registerPanel } from './panels.ts';
import { errorSentence, w } from './words.ts';

type Level = 'all' | 'mentions' | 'none';
interface Settings {
  push: boolean;
  email: boolean;
  previews: boolean;
  quietHours: { start: string; end: string; timezone: string } | null;
  conversations: Record<string, Level>;
  /** Whether this server can send email at all (SMTP configured). */
  emailAvailable?: boolean;
}

/** The service worker's path; its scope is /assets/, which is all a push subscription needs. */
const SW_URL = '/assets/sw.js';

interface NotifyState {
  settings: Settings | null;
  message: string;
  error: string;
  /** This device's Web Push state, in words. */
  push: string;
  subscribed: boolean;
  /** The quiet-hours form as typed and not yet saved: kept when the panel redraws (a save's answer). */
  quietDraft: { on: boolean; start: string; end: string; tz: string } | null;
}
const states = new WeakMap<Chat, NotifyState>();
const views = new WeakMap<Chat, HTMLElement>();
/** The conversations (id and title) the panel last listed: it is drawn again when they change. */
const listed = new WeakMap<Chat, string>();
const convsKey = (chat: Chat) => [...chat.convs.values()].map((c) => `${c.id}:${chat.title(c)}`).join('\n');

function stateOf(chat: Chat) {
  let s = states.get(chat);
  if (!s) states.set(chat, (s = { settings: null, message: '', error: '', push: '', subscribed: false, quietDraft: null }));
  return s;
}

function redraw(chat: Chat) {
  const el = views.get(chat);
  if (el?.isConnected && el.querySelector('[data-testid="notify-settings"]')) draw(chat, el);
}

async function load(chat: Chat) {
  const s = stateOf(chat);
  try {
    s.settings = await chat.session.api.notifications.settings.query();
    const reg = 'serviceWorker' in navigator ? await navigator.serviceWorker.getRegistration(SW_URL) : undefined;
    const sub = reg ? await reg.pushManager?.getSubscription() : null;
    s.subscribed = !!sub;
    if (!s.push) s.push = sub ? w.pushOn : w.pushOff;
  } catch (err) {
    s.error = errorSentence(err);
  }
  redraw(chat);
}

async function save(chat: Chat, update: Partial<Settings>, done: string) {
  const s = stateOf(chat);
  s.error = '';
  s.message = '';
  try {
    s.settings = await chat.session.api.notifications.updateSettings.mutate(update);
    s.message = done;
  } catch (err) {
    s.error = errorSentence(err);
  }
  redraw(chat);
}

/** A VAPID key (base64url) as the bytes `PushManager.subscribe` takes. */
function keyBytes(b64url: string) {
  const b64 = b64url.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/**
 * Turns Web Push on for this browser: registers the service worker, subscribes with the hub's
 * VAPID key, and gives the hub the subscription. Each way it can fail ends in a sentence.
 */
async function enablePush(chat: Chat) {
  const s = stateOf(chat);
  const say = (t: string) => ((s.push = t), redraw(chat));
  if (!('serviceWorker' in navigator) || !('PushManager' in window)) return say(w.noPushApi);
  say(w.pushTurningOn);
  let reg: ServiceWorkerRegistration;
  try {
    reg = await navigator.serviceWorker.register(SW_URL, { scope: '/assets/' });
  } catch (err) {
    return say(w.swFailed(errorSentence(err)));
  }
  const { publicKey } = await chat.session.api.notifications.vapidPublicKey.query();
  if (!publicKey) return say(w.pushNotConfigured);
  if ('Notification' in window && Notification.permission === 'default') await Notification.requestPermission().catch(() => 'default');
  if ('Notification' in window && Notification.permission === 'denied') return say(w.pushBlocked);
  let sub: PushSubscription;
  try {
    const old = await reg.pushManager.getSubscription();
    // A subscription made with another key (the server's keys changed) cannot be reused.
    if (old?.options.applicationServerKey && new Uint8Array(old.options.applicationServerKey).join() !== keyBytes(publicKey).join())
      await old.unsubscribe();
    sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(publicKey) });
  } catch (err) {
    return say(w.pushSubscribeFailed((err as Error).message || 'no push service'));
  }
  const j = sub.toJSON();
  try {
    await chat.session.api.notifications.registerPush.mutate({
      endpoint: sub.endpoint,
      keys: { p256dh: j.keys?.p256dh ?? '', auth: j.keys?.auth ?? '' },
    });
  } catch (err) {
    await sub.unsubscribe().catch(() => false);
    return say(w.pushRefused(errorSentence(err)));
  }
  s.subscribed = true;
  say(w.pushOn);
}

async function disablePush(chat: Chat) {
  const s = stateOf(chat);
  const reg = await navigator.serviceWorker.getRegistration(SW_URL);
  const sub = await reg?.pushManager.getSubscription();
  if (sub) {
    await chat.session.api.notifications.unregisterPush.mutate({ endpoint: sub.endpoint }).catch(() => null);
    await sub.unsubscribe().catch(() => false);
  }
  s.subscribed = false;
  s.push = w.pushOff;
  redraw(chat);
}

function toggle(chat: Chat, key: 'push' | 'email' | 'previews', label: string, hint: string, on: boolean, unavailable?: string) {
  return h(
    'label',
    { class: `toggle${unavailable ? ' off' : ''}` },
    h('input', {
      type: 'checkbox',
      'data-testid': `notify-${key}`,
      checked: on && !unavailable,
      disabled: !!unavailable,
      onchange: (ev: Event) => void save(chat, { [key]: (ev.target as HTMLInputElement).checked }, w.saved),
    }),
    h('span', { class: 'grow' }, label, h('br'), h('small', { 'data-testid': `notify-${key}-hint` }, unavailable ?? hint)),
  );
}

function draw(chat: Chat, el: HTMLElement) {
  const s = stateOf(chat);
  const st = s.settings;
  if (!st) return replace(el, h('section', { class: 'wallet', 'data-testid': 'notify-settings' }, h('p', {}, w.loading)));
  const q = st.quietHours;
  const d = s.quietDraft ?? {
    on: !!q,
    start: q?.start ?? '22:00',
    end: q?.end ?? '07:00',
    tz: q?.timezone ?? Intl.DateTimeFormat().resolvedOptions().timeZone,
  };
  const quietOn = h('input', { type: 'checkbox', 'data-testid': 'quiet-on', checked: d.on });
  const start = h('input', { type: 'time', 'data-testid': 'quiet-start', value: d.start, 'aria-label': w.quietStart });
  const end = h('input', { type: 'time', 'data-testid': 'quiet-end', value: d.end, 'aria-label': w.quietEnd });
  const tz = h('input', {
    'data-testid': 'quiet-tz',
    value: d.tz,
    placeholder: w.quietTzPlaceholder,
    'aria-label': w.quietTz,
    autocomplete: 'off',
  });
  const quiet = h(
    'form',
    { class: 'stack' },
    h('label', { class: 'toggle' }, quietOn, h('span', {}, w.quietHours)),
    h('div', { class: 'row' }, start, end),
    tz,
    h('button', { type: 'submit', 'data-testid': 'quiet-save' }, w.saveQuiet),
  );
  const keep = () => (s.quietDraft = { on: quietOn.checked, start: start.value, end: end.value, tz: tz.value });
  quiet.oninput = keep;
  quiet.onchange = keep;
  quiet.onsubmit = async (ev) => {
    ev.preventDefault();
    keep();
    if (!quietOn.checked) return void save(chat, { quietHours: null }, w.quietOff).then(() => !s.error && (s.quietDraft = null));
    if (!start.value || !end.value) return void ((s.error = w.quietNeedTimes), redraw(chat));
    if (!tz.value.trim()) return void ((s.error = w.quietNeedTz), redraw(chat));
    await save(
      chat,
      { quietHours: { start: start.value, end: end.value, timezone: tz.value.trim() } },
      w.quietSaved(start.value, end.value, tz.value.trim()),
    );
    if (!s.error) (s.quietDraft = null), redraw(chat);
  };
  const convs = [...chat.convs.values()].sort((a, b) => chat.title(a).localeCompare(chat.title(b)));
  listed.set(chat, convsKey(chat));
  replace(
    el,
    h(
      'section',
      { class: 'wallet notify', 'data-testid': 'notify-settings' },
      h('h2', {}, w.notifyBy),
      toggle(chat, 'push', w.push, w.pushHint, st.push),
      toggle(chat, 'email', w.emailDigest, w.emailHint, st.email, st.emailAvailable === false ? w.emailUnavailable : undefined),
      toggle(chat, 'previews', w.previews, w.previewsHint, st.previews),
      h('h2', {}, w.thisDevice),
      h('p', { 'data-testid': 'push-status', role: 'status' }, s.push),
      s.subscribed
        ? h('button', { type: 'button', 'data-testid': 'push-off', onclick: () => void disablePush(chat) }, w.turnPushOff)
        : h('button', { type: 'button', 'data-testid': 'push-on', onclick: () => void enablePush(chat) }, w.turnPushOn),
      h('h2', {}, w.quietHours),
      quiet,
      h('p', { class: 'error', role: 'alert', 'data-testid': 'notify-error' }, s.error),
      h('p', { class: 'ok', role: 'status', 'data-testid': 'notify-message' }, s.message),
      h('h2', {}, w.perConversation),
      convs.length
        ? h(
            'ul',
            { class: 'results', 'data-testid': 'notify-convs' },
            convs.map((c) =>
              h(
                'li',
                { 'data-testid': 'notify-conv', 'data-title': chat.title(c) },
                h('span', { class: 'grow' }, chat.title(c), c.muted ? h('small', {}, ` ${w.muted.toLowerCase()}`) : null),
                h(
                  'select',
                  {
                    'data-testid': 'notify-level',
                    'aria-label': w.levelFor(chat.title(c)),
                    onchange: (ev: Event) =>
                      void save(
                        chat,
                        { conversations: { [c.id]: (ev.target as HTMLSelectElement).value as Level } },
                        w.savedFor(chat.title(c)),
                      ),
                  },
                  (['all', 'mentions', 'none'] as const).map((l) =>
                    h('option', { value: l, selected: (st.conversations[c.id] ?? 'all') === l }, w.levels[l]),
                  ),
                ),
              ),
            ),
          )
        : h('p', { class: 'empty' }, w.noConversations),
    ),
  );
}

registerPanel({
  id: 'notify',
  label: w.notifications,
  // Installed at sign-in, so a push (or a click on one) finds it even before push is turned on here.
  attach: () =>
    void navigator.serviceWorker
      ?.register(SW_URL, { scope: '/assets/' })
      .catch((err: unknown) => console.warn(`service worker not installed: ${errorSentence(err)}`)),
  render(chat, el) {
    // Opened before the conversation list (or a DM partner's name) arrived: its rows follow them,
    // without a redraw for every message (that would take the focus from a field being edited).
    if (!views.has(chat)) chat.on((what) => void (what === 'convs' && listed.get(chat) !== convsKey(chat) && redraw(chat)));
    views.set(chat, el);
    el.onclick = null;
    draw(chat, el);
    void load(chat);
  },
});
