import type { EventFrame } from '@hubbub/client';
import type { Chat, Conv, Pending } from './chat.ts';
import { avatar, h, srOnly, timeOf } from './dom.ts';
import { icon } from './icons.ts';
import { attachmentList } from './attachments-view.ts';
import { w } from './words.ts';

export const QUICK = ['👍', '❤️', '😂', '🎉'];

export interface Msg {
  t: 'msg';
  e: EventFrame;
  body: string | null;
  edited: boolean;
  deleted: boolean;
  reactions: Map<string, Set<string>>;
}

/** Messages with their edits, deletes and reactions applied; member and system events as notes. */
export function derive(events: EventFrame[]) {
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

/** A member event as a sentence; in a direct conversation its start says nothing about adding anyone. */
export function noteText(chat: Chat, c: Conv, e: EventFrame): string | null {
  if (e.kind === 'system') return typeof e.text === 'string' && e.text ? e.text : w.updated;
  const users = e.users ?? [];
  if (e.op === 'joined') {
    if (c.kind === 'direct') return null;
    const others = users.filter((u) => u !== e.from);
    if (!e.from || !others.length) return w.joined(users.map((u) => chat.name(u)));
    const names = others.map((u) => chat.nameObject(u));
    // The first event of a group is its creation.
    return e.seq === 1 ? w.createdGroup(chat.name(e.from), names) : w.added(chat.name(e.from), names);
  }
  if (e.op === 'left') return w.left(users.map((u) => chat.name(u)));
  return w.removed(
    chat.name(e.from),
    users.map((u) => chat.nameObject(u)),
  );
}

/** What a message row needs from its view: state that outlives a redraw, and the actions. */
export interface RowHost {
  chat: Chat;
  /** The message whose actions are open (tapped, or opened from the keyboard). */
  openSeq: number | null;
  toggleActions(seq: number): void;
  react(c: Conv, seq: number, emoji: string, on: boolean): void;
  /** The inline editor of the message being edited, if it is this one. */
  editorFor(seq: number): HTMLElement | null;
  startEdit(c: Conv, m: Msg): void;
  askDelete(c: Conv, m: Msg): void;
}

export function messageRow(
  host: RowHost,
  c: Conv,
  it: Msg,
  v: { mine: boolean; first: boolean; seen: string[] | undefined; name: string },
) {
  const chat = host.chat;
  const me = chat.me.id;
  const editor = host.editorFor(it.e.seq);
  const open = host.openSeq === it.e.seq;
  const files = !it.deleted && it.e.attachments?.length ? it.e.attachments : null;
  const row = h(
    'div',
    {
      class: `msg${v.mine ? ' mine' : ''}${v.first ? ' first' : ''}${open ? ' open' : ''}`,
      'data-testid': 'message',
      'data-seq': it.e.seq,
      'data-from': v.name,
    },
    v.first && !v.mine ? avatar(chat.profiles.get(it.e.from ?? '')) : h('span', { class: 'avatar-space' }),
    h(
      'div',
      { class: 'bubble-wrap' },
      v.first
        ? h(
            'div',
            { class: 'sender', 'data-testid': 'sender' },
            v.name,
            h('time', { datetime: new Date(it.e.ts).toISOString() }, timeOf(it.e.ts)),
          )
        : srOnly(`${v.name}:`),
      editor ??
        (files && !it.body
          ? null
          : h(
              'div',
              { class: `bubble${it.deleted ? ' deleted' : ''}`, 'data-testid': 'body' },
              it.deleted ? w.deleted : it.body,
              it.edited && !it.deleted ? h('small', { class: 'edited' }, ` ${w.edited}`) : null,
            )),
      files ? attachmentList(chat, files) : null,
      it.reactions.size
        ? h(
            'div',
            { class: 'reactions' },
            [...it.reactions]
              .filter(([, s]) => s.size)
              .map(([emoji, s]) =>
                h(
                  'button',
                  {
                    type: 'button',
                    class: `reaction${s.has(me) ? ' mine' : ''}`,
                    'data-testid': 'reaction',
                    'aria-pressed': String(s.has(me)),
                    'aria-label': w.reactionCount(
                      emoji,
                      [...s].map((u) => chat.name(u)),
                    ),
                    title: [...s].map((u) => chat.name(u)).join(', '),
                    onclick: () => host.react(c, it.e.seq, emoji, !s.has(me)),
                  },
                  `${emoji} ${s.size}`,
                ),
              ),
          )
        : null,
      v.seen ? h('div', { class: 'seen', 'data-testid': 'seen' }, w.seenBy(v.seen)) : null,
    ),
    it.deleted || editor
      ? null
      : [
          h(
            'button',
            {
              type: 'button',
              class: 'icon more',
              'data-testid': 'more',
              'aria-expanded': String(open),
              'aria-label': w.messageActions,
              onclick: () => host.toggleActions(it.e.seq),
            },
            icon('more'),
          ),
          h(
            'div',
            { class: 'actions', 'data-testid': 'actions' },
            QUICK.map((emoji) =>
              h(
                'button',
                {
                  type: 'button',
                  class: 'icon',
                  title: w.react(emoji),
                  'aria-label': w.react(emoji),
                  'data-testid': 'react',
                  'data-emoji': emoji,
                  onclick: () => host.react(c, it.e.seq, emoji, !it.reactions.get(emoji)?.has(me)),
                },
                emoji,
              ),
            ),
            v.mine
              ? [
                  h(
                    'button',
                    {
                      type: 'button',
                      class: 'icon',
                      title: w.edit,
                      'aria-label': w.edit,
                      'data-testid': 'edit',
                      onclick: () => host.startEdit(c, it),
                    },
                    icon('edit', 18),
                  ),
                  h(
                    'button',
                    {
                      type: 'button',
                      class: 'icon',
                      title: w.delete,
                      'aria-label': w.delete,
                      'data-testid': 'delete',
                      onclick: () => host.askDelete(c, it),
                    },
                    icon('trash', 18),
                  ),
                ]
              : null,
          ),
        ],
  );
  // A tap on the message (not on one of its buttons) shows its actions: phones have no hover.
  row.addEventListener('click', (ev) => {
    if ((ev.target as Element).closest('button, a, textarea, form')) return;
    if (!it.deleted && !editor) host.toggleActions(it.e.seq);
  });
  return row;
}

/** A send not yet stored: waiting, or refused with its reason and its text kept. */
export function pendingRow(chat: Chat, p: Pending, take: (cid: string, edit: boolean) => void) {
  const status = p.error ? w.notSent(p.error) : chat.connection === 'live' ? w.sending : w.waiting;
  return h(
    'div',
    { class: `msg mine pending${p.error ? ' failed' : ''}`, 'data-testid': 'pending' },
    h('span', { class: 'avatar-space' }),
    h(
      'div',
      { class: 'bubble-wrap' },
      h('div', { class: 'bubble' }, p.body || (p.attachments ?? []).map((a) => a.name).join(', ')),
      h(
        'div',
        { class: 'seen', 'data-testid': 'pending-status' },
        status,
        p.error
          ? h(
              'span',
              { class: 'pending-actions' },
              p.retryable
                ? h('button', { type: 'button', class: 'link', 'data-testid': 'retry', onclick: () => chat.retry(p.cid) }, w.retry)
                : null,
              h('button', { type: 'button', class: 'link', 'data-testid': 'edit-failed', onclick: () => take(p.cid, true) }, w.editFailed),
              h('button', { type: 'button', class: 'link', 'data-testid': 'discard', onclick: () => take(p.cid, false) }, w.discard),
            )
          : null,
      ),
    ),
  );
}
