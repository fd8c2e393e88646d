import { authView } from './auth-view.ts';
import { Chat } from './chat.ts';
import { ConversationView } from './conversation-view.ts';
import { newDirectDialog, newGroupDialog } from './dialogs.ts';
import { avatar, h, replace } from './dom.ts';
import { panels } from './panels.ts';
import './conv-list.ts';
import './wallet.ts';
import './notify-settings.ts';
import { Session } from './session.ts';

const root = document.getElementById('app')!;
const session = new Session();
let chat: Chat | null = null;

function showAuth() {
  chat?.stop();
  chat = null;
  replace(root, authView(session, () => void showChat()));
}

async function showChat() {
  const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  const c = (chat = new Chat(session, wsUrl));
  for (const p of panels) p.attach?.(c);
  let panel = panels[0]!;
  const banner = h('div', { class: 'banner', role: 'status', 'data-testid': 'banner', hidden: true });
  const panelEl = h('div', { class: 'panel' });
  const tabs = h('nav', { class: 'tabs' });
  const view = new ConversationView(c);
  const me = session.user!;
  const sidebar = h(
    'aside',
    { class: 'sidebar' },
    h(
      'header',
      { class: 'me' },
      avatar({ id: me.id, displayName: me.displayName, avatarUrl: me.avatarUrl }, true),
      h('div', { class: 'grow' }, h('strong', { 'data-testid': 'me' }, me.displayName), h('small', {}, '@' + me.username)),
      h('button', { type: 'button', class: 'link', 'data-testid': 'sign-out', onclick: () => void session.logout().then(showAuth) }, 'Sign out'),
    ),
    h(
      'div',
      { class: 'new' },
      h('button', { type: 'button', 'data-testid': 'new-dm', onclick: () => newDirectDialog(c) }, 'New message'),
      h('button', { type: 'button', 'data-testid': 'new-group', onclick: () => newGroupDialog(c) }, 'New group'),
    ),
    tabs,
    panelEl,
  );
  const drawTabs = () =>
    replace(
      tabs,
      panels.length > 1
        ? panels.map((p) => h('button', { type: 'button', class: p === panel ? 'active' : '', 'data-testid': `tab-${p.id}`, onclick: () => ((panel = p), drawTabs(), panel.render(c, panelEl)) }, p.label))
        : null,
    );
  drawTabs();
  replace(root, h('div', { class: 'shell' }, sidebar, h('div', { class: 'main' }, banner, view.el)));

  const drawBanner = () => {
    banner.hidden = c.connection === 'live';
    banner.textContent = c.connection === 'reconnecting' ? 'Connection lost. Reconnecting… Messages you send now will go out when it is back.' : 'Connecting…';
    banner.className = `banner ${c.connection}`;
  };
  let queued = false;
  const dirty = new Set<string>();
  c.on((what) => {
    if (what === 'signedOut') return showAuth();
    dirty.add(what);
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      const d = new Set(dirty);
      dirty.clear();
      if (chat !== c) return;
      if (d.has('connection')) drawBanner();
      if (d.has('convs') || d.has('presence') || d.has('open')) panel.id === 'chats' && panel.render(c, panelEl);
      if (d.has('convs')) {
        const unread = [...c.convs.values()].reduce((n, conv) => n + (conv.muted ? 0 : conv.unread), 0);
        document.title = unread ? `(${unread}) Hubbub` : 'Hubbub';
      }
      if (d.has('open') || d.has('convs')) view.render();
      else {
        const conv = c.open ? c.convs.get(c.open) : undefined;
        if (conv && (d.has('messages') || d.has('older') || d.has('receipts') || d.has('connection'))) view.renderMessages(conv);
        if (conv && (d.has('typing') || d.has('messages'))) view.renderTyping(conv);
        if (conv && d.has('presence')) view.renderHeader(conv);
      }
    });
  });
  document.addEventListener('visibilitychange', () => chat === c && c.markOpenRead());
  drawBanner();
  view.render();
  try {
    await c.start();
  } catch {
    // The refresh token was refused (signed out elsewhere, or expired).
    if (!session.signedIn()) return showAuth();
  }
  // A notification's link (push, email) is /#/c/<conversation id>: open it.
  const fromHash = () => {
    const id = /^#\/c\/([0-9a-f-]{36})$/.exec(location.hash)?.[1];
    if (id && chat === c && c.convs.has(id)) void c.openConv(id);
  };
  fromHash();
  window.addEventListener('hashchange', fromHash);
}

async function boot() {
  if (!session.signedIn()) return showAuth();
  try {
    // Rotate at once: proves the stored session is still good and starts a fresh 15 minutes.
    await session.refresh();
  } catch {
    if (!session.signedIn()) return showAuth();
  }
  await showChat();
}

void boot();
