import { authView } from './auth-view.ts';
import { Chat } from './chat.ts';
import { ConversationView } from './conversation-view.ts';
import { newDirectDialog, newGroupDialog } from './dialogs.ts';
import { avatar, h, replace } from './dom.ts';
import { panels } from './panels.ts';
import { goList, onRoute, replaceWithList, routedConv } from './router.ts';
import './conv-list.ts';
import './wallet.ts';
import './notify-settings.ts';
import './search-panel.ts';
import { Session } from './session.ts';
import { followVisualViewport } from './viewport.ts';
import { w } from './words.ts';

const root = document.getElementById('app')!;
const session = new Session();
let chat: Chat | null = null;
let offRoute: (() => void) | null = null;

function showAuth() {
  chat?.stop();
  chat = null;
  offRoute?.();
  replace(
    root,
    authView(session, () => void showChat()),
  );
}

/**
 * The signed-in page: the sidebar (who you are, sign out, new message and group, the panels) and
 * the open conversation. Wide windows show both; below 700 px one at a time (`data-view`), the
 * list until a conversation is routed, then the conversation with a back control.
 */
async function showChat() {
  const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  const c = (chat = new Chat(session, wsUrl));
  for (const p of panels) p.attach?.(c);
  let panel = panels[0]!;
  const banner = h('div', { class: 'banner', role: 'status', 'data-testid': 'banner', hidden: true });
  const panelEl = h('div', { class: 'panel', id: 'panel', role: panels.length > 1 ? 'tabpanel' : null });
  const tabs = h('nav', { class: 'tabs', 'aria-label': w.sections });
  const view = new ConversationView(c, () => goList());
  const me = session.user!;
  const sidebar = h(
    'section',
    { class: 'sidebar', 'aria-label': w.chats },
    h(
      'header',
      { class: 'me' },
      avatar({ id: me.id, displayName: me.displayName, avatarUrl: me.avatarUrl }, true),
      h('div', { class: 'grow' }, h('strong', { 'data-testid': 'me' }, me.displayName), h('small', {}, '@' + me.username)),
      h(
        'button',
        { type: 'button', class: 'link', 'data-testid': 'sign-out', onclick: () => void session.logout().then(showAuth) },
        w.signOut,
      ),
    ),
    h(
      'div',
      { class: 'new' },
      h('button', { type: 'button', 'data-testid': 'new-dm', onclick: () => newDirectDialog(c) }, w.newMessage),
      h('button', { type: 'button', 'data-testid': 'new-group', onclick: () => newGroupDialog(c) }, w.newGroup),
    ),
    tabs,
    panelEl,
  );
  const drawTabs = () =>
    replace(
      tabs,
      panels.length > 1
        ? h(
            'div',
            { role: 'tablist', class: 'tablist' },
            panels.map((p) =>
              h(
                'button',
                {
                  type: 'button',
                  role: 'tab',
                  'aria-selected': String(p === panel),
                  'aria-controls': 'panel',
                  class: p === panel ? 'active' : '',
                  'data-testid': `tab-${p.id}`,
                  onclick: () => ((panel = p), drawTabs(), panel.render(c, panelEl)),
                },
                p.label,
              ),
            ),
          )
        : null,
    );
  drawTabs();
  const shell = h(
    'main',
    { class: 'shell', 'data-view': 'list' },
    h('h1', { class: 'sr-only' }, w.appName),
    sidebar,
    h('div', { class: 'main' }, view.el),
  );
  replace(root, h('div', { class: 'app' }, banner, shell));

  const drawBanner = () => {
    banner.hidden = c.connection === 'live';
    banner.textContent =
      c.connection === 'refused' ? w.originRefused(location.origin) : c.connection === 'reconnecting' ? w.reconnecting : w.connecting;
    banner.className = `banner ${c.connection}`;
    banner.setAttribute('role', c.connection === 'refused' ? 'alert' : 'status');
  };
  let lastOpen: string | null = null;
  const drawView = () => {
    shell.dataset.view = c.open ? 'conv' : 'list';
    // Closed by the page (the conversation was left or removed): the address follows.
    if (!c.open && routedConv()) replaceWithList();
    // Back on the list (a phone): the keyboard and screen reader resume at the conversation just left.
    if (!c.open && lastOpen && matchMedia('(max-width: 700px)').matches) {
      const id = lastOpen;
      requestAnimationFrame(() => panelEl.querySelector<HTMLElement>(`[data-conv="${id}"]`)?.focus());
    }
    lastOpen = c.open;
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
        document.title = w.unreadTitle(unread);
      }
      if (d.has('open')) drawView();
      if (d.has('open') || d.has('convs')) view.render();
      else {
        const conv = c.open ? c.convs.get(c.open) : undefined;
        if (conv && (d.has('messages') || d.has('older') || d.has('receipts') || d.has('connection'))) view.renderMessages(conv);
        if (conv && (d.has('typing') || d.has('messages'))) view.renderTyping(conv);
        if (conv && d.has('presence')) view.renderHeader(conv);
      }
      if (d.has('messages')) view.announce();
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
  // The address says which conversation is open: at load (a reload, a notification's link) and
  // on every change (a click in the list, the back button).
  const route = (id: string | null) => {
    if (chat !== c) return;
    if (!id) return c.closeConv();
    if (!c.convs.has(id)) return replaceWithList();
    void c.openConv(id);
  };
  offRoute?.();
  offRoute = onRoute(route);
  route(routedConv());
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

followVisualViewport();
void boot();
