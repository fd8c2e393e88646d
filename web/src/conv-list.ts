import type { Chat } from './chat.ts';
import { avatar, h, replace, srOnly, timeOf } from './dom.ts';
import { registerPanel } from './panels.ts';
import { goConv } from './router.ts';
import { w } from './words.ts';

/** The conversation list: last message, unread badge, muted state, the DM peer's presence. Each entry is a link to its route. */
export function renderConvList(chat: Chat, el: HTMLElement) {
  // One listener on the panel, which outlives the list: a click lands even if the list is redrawn
  // between the press and the release (a message arriving).
  el.onclick = (ev) => {
    const a = (ev.target as Element).closest<HTMLElement>('[data-conv]');
    if (!a?.dataset.conv) return;
    const me = ev as MouseEvent;
    // A click with a modifier opens the link as the browser would (a new tab, a new window).
    if (me.ctrlKey || me.metaKey || me.shiftKey || me.button !== 0) return;
    ev.preventDefault();
    goConv(a.dataset.conv);
  };
  const convs = [...chat.convs.values()].sort(
    (a, b) => (b.lastMessage?.ts ?? Date.parse(b.createdAt)) - (a.lastMessage?.ts ?? Date.parse(a.createdAt)),
  );
  if (!convs.length) {
    replace(el, h('p', { class: 'empty' }, w.noConversations));
    return;
  }
  replace(
    el,
    h(
      'ul',
      { class: 'conv-list', 'data-testid': 'conv-list', 'aria-label': w.chats },
      convs.map((c) => {
        const peer = chat.peer(c);
        const online = peer ? chat.online.has(peer) : undefined;
        const last = c.lastMessage;
        const who = last ? (last.from === chat.me.id ? w.youPrefix : c.kind === 'group' ? `${chat.name(last.from)}: ` : '') : '';
        const preview = last ? `${who}${last.redacted ? w.messageDeleted : (last.body ?? '')}` : w.noMessagesYet;
        return h(
          'li',
          {},
          h(
            'a',
            {
              href: `#/c/${c.id}`,
              class: `conv${chat.open === c.id ? ' active' : ''}${c.unread ? ' has-unread' : ''}`,
              'aria-current': chat.open === c.id ? 'page' : null,
              'data-testid': 'conv',
              'data-conv': c.id,
              'data-title': chat.title(c),
            },
            c.kind === 'group'
              ? h('span', { class: 'avatar group', 'aria-hidden': 'true' }, '#')
              : avatar(peer ? chat.profiles.get(peer) : undefined, online),
            h(
              'span',
              { class: 'conv-text' },
              h(
                'span',
                { class: 'conv-title' },
                h('span', { 'data-testid': 'conv-title' }, chat.title(c)),
                online === undefined ? null : srOnly(`, ${online ? w.online : w.offline}`),
                c.muted
                  ? h(
                      'span',
                      { class: 'muted-icon', title: w.muted, 'data-testid': 'muted' },
                      h('span', { 'aria-hidden': 'true' }, '🔕'),
                      srOnly(`, ${w.muted}`),
                    )
                  : null,
              ),
              h('span', { class: 'conv-preview', 'data-testid': 'conv-preview' }, preview),
            ),
            h(
              'span',
              { class: 'conv-meta' },
              last ? h('span', { class: 'time' }, timeOf(last.ts)) : null,
              c.unread
                ? [
                    h(
                      'span',
                      { class: `badge${c.muted ? ' quiet' : ''}`, 'data-testid': 'unread', 'aria-hidden': 'true' },
                      w.unreadBadge(c.unread, !!c.unreadMore),
                    ),
                    srOnly(`, ${w.unreadLabel(c.unread, !!c.unreadMore)}`),
                  ]
                : null,
            ),
          ),
        );
      }),
    ),
  );
}

registerPanel({ id: 'chats', label: w.chats, render: renderConvList });
