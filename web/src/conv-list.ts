import type { Chat } from './chat.ts';
import { avatar, h, replace, timeOf } from './dom.ts';
import { registerPanel } from './panels.ts';

/** The conversation list: last message, unread badge, muted state, the DM peer's presence. */
export function renderConvList(chat: Chat, el: HTMLElement) {
  // One listener on the panel, which outlives the list: a click lands even if the list is redrawn
  // between the press and the release (a message arriving).
  el.onclick = (ev) => {
    const li = (ev.target as Element).closest<HTMLElement>('[data-conv]');
    if (li?.dataset.conv) void chat.openConv(li.dataset.conv);
  };
  const convs = [...chat.convs.values()].sort(
    (a, b) => (b.lastMessage?.ts ?? Date.parse(b.createdAt)) - (a.lastMessage?.ts ?? Date.parse(a.createdAt)),
  );
  if (!convs.length) {
    replace(el, h('p', { class: 'empty' }, 'No conversations yet. Start one with “New message”.'));
    return;
  }
  replace(
    el,
    h(
      'ul',
      { class: 'conv-list', 'data-testid': 'conv-list' },
      convs.map((c) => {
        const peer = chat.peer(c);
        const last = c.lastMessage;
        const preview = last ? `${last.from === chat.me.id ? 'You: ' : c.kind === 'group' ? chat.name(last.from) + ': ' : ''}${last.redacted ? 'message deleted' : (last.body ?? '')}` : 'No messages yet';
        return h(
          'li',
          {
            class: `conv${chat.open === c.id ? ' active' : ''}${c.unread ? ' has-unread' : ''}`,
            'data-testid': 'conv',
            'data-conv': c.id,
            'data-title': chat.title(c),
          },
          c.kind === 'group'
            ? h('span', { class: 'avatar group' }, '#')
            : avatar(peer ? chat.profiles.get(peer) : undefined, peer ? chat.online.has(peer) : undefined),
          h(
            'div',
            { class: 'conv-text' },
            h('div', { class: 'conv-title' }, h('span', { 'data-testid': 'conv-title' }, chat.title(c)), c.muted ? h('span', { class: 'muted-icon', title: 'Muted', 'data-testid': 'muted' }, '🔕') : null),
            h('div', { class: 'conv-preview', 'data-testid': 'conv-preview' }, preview),
          ),
          h(
            'div',
            { class: 'conv-meta' },
            last ? h('span', { class: 'time' }, timeOf(last.ts)) : null,
            c.unread ? h('span', { class: `badge${c.muted ? ' quiet' : ''}`, 'data-testid': 'unread' }, String(c.unread)) : null,
          ),
        );
      }),
    ),
  );
}

registerPanel({ id: 'chats', label: 'Chats', render: renderConvList });
