import { errorText, type EventFrame } from '@hubbub/client';
import type { Chat, Conv } from './chat.ts';
import { membersDialog } from './dialogs.ts';
import { avatar, h, reconcile, replace, timeOf, type Row } from './dom.ts';
import { tipDialog, tipText } from './tip.ts';

const QUICK = ['👍', '❤️', '😂', '🎉'];

interface Msg {
  t: 'msg';
  e: EventFrame;
  body: string | null;
  edited: boolean;
  deleted: boolean;
  reactions: Map<string, Set<string>>;
}

/** Messages with their edits, deletes and reactions applied; member and system events as notes. */
function derive(events: EventFrame[]) {
  const bySeq = new Map<number, Msg>();
  const out: (Msg | { t: 'note'; e: EventFrame })[] = [];
  for (const e of events) {
    if (e.kind === 'message') {
      const m: Msg = { t: 'msg', e, body: e.body ?? null, edited: false, deleted: !!e.redacted || e.body == null, reactions: new Map() };
      bySeq.set(e.seq, m);
      out.push(m);
    } else if (e.kind === 'member' || e.kind === 'system') out.push({ t: 'note', e });
  }
  for (const e of events) {
    const m = e.target !== undefined ? bySeq.get(e.target) : undefined;
    if (!m) continue;
    if (e.kind === 'edit' && !m.deleted) (m.body = e.body ?? m.body), (m.edited = true);
    if (e.kind === 'delete') (m.deleted = true), (m.body = null);
    if (e.kind === 'reaction' && e.emoji && e.from) {
      let s = m.reactions.get(e.emoji);
      if (!s) m.reactions.set(e.emoji, (s = new Set()));
      if (e.on) s.add(e.from);
      else s.delete(e.from);
    }
  }
  return out;
}

export class ConversationView {
  readonly el = h('main', { class: 'conversation', 'data-testid': 'conversation' });
  private header = h('header', { class: 'conv-header' });
  private list = h('div', { class: 'messages', 'data-testid': 'messages' });
  private typingLine = h('div', { class: 'typing', 'data-testid': 'typing', 'aria-live': 'polite' });
  private error = h('p', { class: 'error', role: 'alert', 'data-testid': 'send-error' });
  private input = h('textarea', { rows: 1, placeholder: 'Write a message', 'data-testid': 'composer' });
  private composer = h('form', { class: 'composer' }, this.input, h('button', { type: 'submit', class: 'primary', 'data-testid': 'send' }, 'Send'));
  private shownConv: string | null = null;
  private stickToBottom = false;

  constructor(private readonly chat: Chat) {
    this.composer.onsubmit = (ev) => {
      ev.preventDefault();
      const problem = chat.send(this.input.value);
      this.error.textContent = problem ?? '';
      if (!problem) {
        this.input.value = '';
        // Your own message always brings you to the bottom, wherever you had scrolled.
        this.stickToBottom = true;
      }
    };
    this.input.onkeydown = (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey) {
        ev.preventDefault();
        this.composer.requestSubmit();
      }
    };
    this.input.oninput = () => {
      this.error.textContent = '';
      if (this.input.value) chat.typed();
    };
    this.list.onscroll = () => {
      if (this.list.scrollTop < 80) void this.older();
    };
  }

  private async older() {
    const before = this.list.scrollHeight - this.list.scrollTop;
    const n = await this.chat.loadOlder();
    // Keep the message that was on screen where it was.
    if (n) this.list.scrollTop = this.list.scrollHeight - before;
  }

  render() {
    const c = this.chat.open ? this.chat.convs.get(this.chat.open) : undefined;
    if (!c) {
      this.shownConv = null;
      replace(this.el, h('div', { class: 'placeholder' }, h('p', {}, 'Pick a conversation, or start one.')));
      return;
    }
    if (this.shownConv !== c.id) {
      this.shownConv = c.id;
      this.input.value = '';
      this.error.textContent = '';
      replace(this.el, this.header, this.list, this.typingLine, this.error, this.composer);
      this.input.focus();
    }
    this.renderHeader(c);
    this.renderMessages(c);
    this.renderTyping(c);
  }

  renderHeader(c: Conv) {
    const peer = this.chat.peer(c);
    const sub =
      c.kind === 'group'
        ? `${c.members.length} members`
        : peer && this.chat.online.has(peer)
          ? 'online'
          : 'offline';
    replace(
      this.header,
      c.kind === 'group' ? h('span', { class: 'avatar group' }, '#') : avatar(peer ? this.chat.profiles.get(peer) : undefined, peer ? this.chat.online.has(peer) : undefined),
      h('div', { class: 'grow' }, h('h2', { 'data-testid': 'conv-heading' }, this.chat.title(c)), h('small', { 'data-testid': 'conv-sub' }, sub)),
      c.members.length > 1 ? h('button', { type: 'button', 'data-testid': 'tip-button', title: 'Send money to someone here', onclick: () => tipDialog(this.chat, c) }, 'Tip') : null,
      h('button', { type: 'button', 'data-testid': 'mute', onclick: () => void this.chat.mute(!c.muted).catch((e) => (this.error.textContent = errorText(e))) }, c.muted ? 'Unmute' : 'Mute'),
      c.kind === 'group' ? h('button', { type: 'button', 'data-testid': 'members-button', onclick: () => membersDialog(this.chat) }, 'Members') : null,
    );
  }

  renderTyping(c: Conv) {
    const who = this.chat.typers(c.id).map((u) => this.chat.name(u));
    this.typingLine.textContent = who.length ? `${who.join(', ')} ${who.length > 1 ? 'are' : 'is'} typing…` : '';
  }

  renderMessages(c: Conv) {
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    const events = [...(this.chat.events.get(c.id)?.values() ?? [])].sort((a, b) => a.seq - b.seq);
    const items = derive(events);
    const me = this.chat.me.id;
    // "Seen by": each other member under the newest message their read cursor covers.
    const seenAt = new Map<number, string[]>();
    const messages = items.filter((i): i is Msg => i.t === 'msg');
    for (const [user, cursor] of this.chat.cursorsOf(c.id)) {
      if (user === me) continue;
      // Under their own messages it says nothing: the newest message of someone else they read.
      const at = messages.filter((m) => m.e.seq <= cursor && m.e.from !== user).at(-1)?.e.seq;
      if (at !== undefined) seenAt.set(at, [...(seenAt.get(at) ?? []), this.chat.name(user)]);
    }
    const o = this.chat.oldest.get(c.id);
    const rows: Row[] = [];
    const k = (x: string | number) => `${c.id}:${x}`;
    if (o?.more) rows.push({ key: k('top'), sig: 'more', make: () => h('div', { class: 'note', 'data-testid': 'older' }, 'Scroll up for older messages') });
    else if (o) rows.push({ key: k('top'), sig: 'start', make: () => h('div', { class: 'note' }, 'This is the start of the conversation.') });
    let prevFrom: string | null | undefined;
    for (const it of items) {
      if (it.t === 'note') {
        prevFrom = undefined;
        const tip = tipText(this.chat, it.e);
        const text = tip ?? this.note(it.e);
        rows.push({ key: k(it.e.seq), sig: text, make: () => h('div', { class: tip ? 'note tip' : 'note', 'data-testid': tip ? 'tip' : 'note' }, tip ? '💸 ' : null, text) });
        continue;
      }
      const mine = it.e.from === me;
      const first = prevFrom !== it.e.from;
      prevFrom = it.e.from;
      const seen = seenAt.get(it.e.seq);
      const name = this.chat.name(it.e.from);
      const reactions = [...it.reactions].filter(([, s]) => s.size).map(([emoji, s]) => [emoji, [...s]] as const);
      const sig = JSON.stringify([first, name, it.body, it.edited, it.deleted, reactions, seen, this.chat.profiles.get(it.e.from ?? '')?.avatarUrl]);
      rows.push({ key: k(it.e.seq), sig, make: () => this.messageRow(c, it, { mine, first, seen, name }) });
    }
    for (const p of this.chat.pendingOf(c.id)) {
      const status = p.error ?? (this.chat.connection === 'live' ? 'Sending…' : 'Waiting for connection…');
      rows.push({
        key: k(p.cid),
        sig: status,
        make: () =>
          h(
            'div',
            { class: 'msg mine pending', 'data-testid': 'pending' },
            h('span', { class: 'avatar-space' }),
            h(
              'div',
              { class: 'bubble-wrap' },
              h('div', { class: 'bubble' }, p.body),
              h('div', { class: 'seen' }, p.error ? [p.error + ' ', h('button', { type: 'button', class: 'link', onclick: () => this.chat.retry(p.cid) }, 'Retry')] : status),
            ),
          ),
      });
    }
    reconcile(this.list, rows);
    if (atBottom || this.stickToBottom || this.list.dataset.conv !== c.id) this.list.scrollTop = this.list.scrollHeight;
    this.stickToBottom = false;
    this.list.dataset.conv = c.id;
  }

  private messageRow(c: Conv, it: Msg, v: { mine: boolean; first: boolean; seen: string[] | undefined; name: string }) {
    const me = this.chat.me.id;
    return h(
      'div',
      { class: `msg${v.mine ? ' mine' : ''}${v.first ? ' first' : ''}`, 'data-testid': 'message', 'data-seq': it.e.seq, 'data-from': v.name },
      v.first && !v.mine ? avatar(this.chat.profiles.get(it.e.from ?? '')) : h('span', { class: 'avatar-space' }),
      h(
        'div',
        { class: 'bubble-wrap' },
        v.first ? h('div', { class: 'sender', 'data-testid': 'sender' }, v.name, h('time', {}, timeOf(it.e.ts))) : null,
        h('div', { class: `bubble${it.deleted ? ' deleted' : ''}`, 'data-testid': 'body' }, it.deleted ? 'message deleted' : it.body, it.edited && !it.deleted ? h('small', { class: 'edited' }, ' (edited)') : null),
        it.reactions.size
          ? h(
              'div',
              { class: 'reactions' },
              [...it.reactions].filter(([, s]) => s.size).map(([emoji, s]) =>
                h('button', { type: 'button', class: `reaction${s.has(me) ? ' mine' : ''}`, 'data-testid': 'reaction', title: [...s].map((u) => this.chat.name(u)).join(', '), onclick: () => this.act(() => this.chat.socket.react(c.id, it.e.seq, emoji, !s.has(me))) }, `${emoji} ${s.size}`),
              ),
            )
          : null,
        v.seen ? h('div', { class: 'seen', 'data-testid': 'seen' }, `Seen by ${v.seen.join(', ')}`) : null,
      ),
      it.deleted ? null : this.actions(c, it, v.mine),
    );
  }

  private actions(c: Conv, m: Msg, mine: boolean) {
    return h(
      'div',
      { class: 'actions' },
      QUICK.map((emoji) => h('button', { type: 'button', class: 'icon', title: `React ${emoji}`, 'data-testid': 'react', onclick: () => this.act(() => this.chat.socket.react(c.id, m.e.seq, emoji, !m.reactions.get(emoji)?.has(this.chat.me.id))) }, emoji)),
      mine
        ? [
            h('button', { type: 'button', class: 'icon', title: 'Edit', 'data-testid': 'edit', onclick: () => this.edit(c, m) }, '✎'),
            h('button', { type: 'button', class: 'icon', title: 'Delete', 'data-testid': 'delete', onclick: () => confirm('Delete this message?') && this.act(() => this.chat.socket.delete(c.id, m.e.seq)) }, '🗑'),
          ]
        : null,
    );
  }

  private edit(c: Conv, m: Msg) {
    const body = prompt('Edit message', m.body ?? '');
    if (body === null || body === m.body) return;
    if (!body.trim()) return void (this.error.textContent = 'A message cannot be empty; delete it instead.');
    this.act(() => this.chat.socket.edit(c.id, m.e.seq, body));
  }

  private act(fn: () => Promise<unknown>) {
    this.error.textContent = '';
    fn().catch((err) => (this.error.textContent = errorText(err)));
  }

  private note(e: EventFrame) {
    if (e.kind === 'system') return e.text ?? 'Conversation updated';
    const users = e.users ?? [];
    const names = users.map((u) => this.chat.name(u)).join(', ');
    if (e.op === 'joined') {
      const others = users.filter((u) => u !== e.from);
      return e.from && others.length ? `${this.chat.name(e.from)} added ${others.map((u) => this.chat.name(u)).join(', ')}` : `${names} joined`;
    }
    if (e.op === 'left') return `${names} left`;
    return `${this.chat.name(e.from)} removed ${names}`;
  }
}
