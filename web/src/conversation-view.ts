import type { Chat, Conv } from './chat.ts';
import { Composer } from './composer.ts';
import { confirmDialog, membersDialog } from './dialogs.ts';
import { avatar, h, reconcile, replace, type Row } from './dom.ts';
import { icon, type IconName } from './icons.ts';
import { derive, messageRow, noteText, pendingRow, type Msg, type RowHost } from './message-row.ts';
import { tipDialog, tipText } from './tip.ts';
import { errorSentence, w } from './words.ts';

/** A header button: an icon, and a label that phones keep for screen readers only. */
const headerButton = (name: IconName, label: string, attrs: Record<string, string | EventListener>) =>
  h('button', { type: 'button', class: 'head-btn', ...attrs }, icon(name), h('span', { class: 'label' }, label));

export class ConversationView implements RowHost {
  readonly el = h('section', { class: 'conversation', 'data-testid': 'conversation' });
  private header = h('header', { class: 'conv-header' });
  private list = h('div', { class: 'messages', 'data-testid': 'messages', role: 'region', 'aria-label': w.messages, tabindex: '0' });
  private typingLine = h('div', { class: 'typing', 'data-testid': 'typing', 'aria-live': 'polite' });
  /** New messages from others, read out by screen readers (the list itself redraws rows, so it is no live region). */
  private live = h('div', { class: 'sr-only', 'aria-live': 'polite', 'data-testid': 'live-region' });
  private composer: Composer;
  private shownConv: string | null = null;
  private stickToBottom = false;
  private announced = new Map<string, number>();
  openSeq: number | null = null;
  private scrolledTo: string | null = null;
  private editing: { seq: number; form: HTMLElement } | null = null;

  constructor(
    readonly chat: Chat,
    private readonly back: () => void,
  ) {
    this.composer = new Composer(chat);
    // Your own message always brings you to the bottom, wherever you had scrolled.
    this.composer.onSent = () => (this.stickToBottom = true);
    // Files dropped anywhere on the conversation are attached.
    this.el.ondragover = (ev) => {
      if (ev.dataTransfer?.types.includes('Files')) ev.preventDefault();
    };
    this.el.ondrop = (ev) => {
      if (this.composer.uploader.take(ev.dataTransfer)) ev.preventDefault();
    };
    this.list.onscroll = () => {
      if (this.list.scrollTop < 80) void this.older();
    };
    this.list.onkeydown = (ev) => {
      if (ev.key === 'Escape' && this.openSeq !== null) this.toggleActions(this.openSeq);
    };
  }

  private async older() {
    const before = this.list.scrollHeight - this.list.scrollTop;
    const n = await this.chat.loadOlder();
    // Keep the message that was on screen where it was.
    if (n) this.list.scrollTop = this.list.scrollHeight - before;
  }

  private get error() {
    return this.composer.error;
  }

  render() {
    const c = this.chat.open ? this.chat.convs.get(this.chat.open) : undefined;
    if (!c) {
      this.shownConv = null;
      this.el.removeAttribute('aria-labelledby');
      replace(this.el, h('div', { class: 'placeholder' }, h('p', {}, w.pickConversation)));
      return;
    }
    if (this.shownConv !== c.id) {
      this.shownConv = c.id;
      this.el.setAttribute('aria-labelledby', 'conv-heading');
      this.openSeq = null;
      this.editing = null;
      this.composer.show(c.id);
      this.announced.set(c.id, c.lastSeq);
      replace(this.el, this.header, this.list, this.typingLine, this.live, this.composer.error, this.composer.el);
      // On a phone the keyboard would cover half the conversation the moment it opens: focus waits for a tap.
      if (!matchMedia('(max-width: 700px)').matches) this.composer.focus();
      else this.header.querySelector<HTMLElement>('h2')?.focus();
    }
    this.renderHeader(c);
    this.renderMessages(c);
    this.renderTyping(c);
  }

  renderHeader(c: Conv) {
    const peer = this.chat.peer(c);
    const sub = c.kind === 'group' ? w.members(c.members.length) : peer && this.chat.online.has(peer) ? w.online : w.offline;
    const hadFocus = this.header.contains(document.activeElement) ? (document.activeElement as HTMLElement).dataset.testid : undefined;
    replace(
      this.header,
      h(
        'button',
        { type: 'button', class: 'back', 'data-testid': 'back', 'aria-label': w.back, onclick: () => this.back() },
        icon('back', 24),
      ),
      c.kind === 'group'
        ? h('span', { class: 'avatar group', 'aria-hidden': 'true' }, '#')
        : avatar(peer ? this.chat.profiles.get(peer) : undefined, peer ? this.chat.online.has(peer) : undefined),
      h(
        'div',
        { class: 'grow title' },
        h('h2', { id: 'conv-heading', 'data-testid': 'conv-heading', tabindex: '-1' }, this.chat.title(c)),
        h('small', { 'data-testid': 'conv-sub' }, sub),
      ),
      c.members.length > 1
        ? headerButton('tip', w.tip, { 'data-testid': 'tip-button', title: w.tipHint, onclick: () => tipDialog(this.chat, c) })
        : null,
      headerButton(c.muted ? 'bell' : 'bellOff', c.muted ? w.unmute : w.mute, {
        'data-testid': 'mute',
        'aria-pressed': String(c.muted),
        onclick: () => void this.chat.mute(!c.muted).catch((e) => (this.error.textContent = errorSentence(e))),
      }),
      c.kind === 'group'
        ? headerButton('members', w.membersButton, { 'data-testid': 'members-button', onclick: () => membersDialog(this.chat) })
        : null,
    );
    // Redrawn under the finger (presence changed): focus stays on the same control.
    if (hadFocus) this.header.querySelector<HTMLElement>(`[data-testid="${hadFocus}"]`)?.focus();
  }

  renderTyping(c: Conv) {
    this.typingLine.textContent = w.typing(this.chat.typers(c.id).map((u) => this.chat.name(u)));
  }

  /** Reads out messages from others that arrived in the open conversation since the last call. */
  announce() {
    const c = this.chat.open ? this.chat.convs.get(this.chat.open) : undefined;
    if (!c) return;
    const from = this.announced.get(c.id) ?? c.lastSeq;
    const fresh = [...(this.chat.events.get(c.id)?.values() ?? [])].filter(
      (e) => e.seq > from && e.kind === 'message' && e.from !== this.chat.me.id && e.body,
    );
    this.announced.set(c.id, Math.max(from, c.lastSeq));
    if (fresh.length) this.live.textContent = fresh.map((e) => w.newMessageFrom(this.chat.name(e.from), e.body ?? '')).join('\n');
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
    if (o?.more) rows.push({ key: k('top'), sig: 'more', make: () => h('div', { class: 'note', 'data-testid': 'older' }, w.olderAbove) });
    else if (o) rows.push({ key: k('top'), sig: 'start', make: () => h('div', { class: 'note' }, w.startOfConversation) });
    let prevFrom: string | null | undefined;
    for (const it of items) {
      if (it.t === 'note') {
        const tip = tipText(this.chat, it.e);
        const text = tip ?? noteText(this.chat, c, it.e);
        if (text === null) continue;
        prevFrom = undefined;
        rows.push({
          key: k(it.e.seq),
          sig: text,
          make: () =>
            h(
              'div',
              { class: tip ? 'note tip' : 'note', 'data-testid': tip ? 'tip' : 'note' },
              tip ? h('span', { 'aria-hidden': 'true' }, '💸 ') : null,
              text,
            ),
        });
        continue;
      }
      const mine = it.e.from === me;
      const first = prevFrom !== it.e.from;
      prevFrom = it.e.from;
      const seen = seenAt.get(it.e.seq);
      const name = this.chat.name(it.e.from);
      const reactions = [...it.reactions].filter(([, s]) => s.size).map(([emoji, s]) => [emoji, [...s]] as const);
      const state = [this.openSeq === it.e.seq, this.editing?.seq === it.e.seq];
      const sig = JSON.stringify([
        first,
        name,
        it.body,
        it.edited,
        it.deleted,
        reactions,
        seen,
        this.chat.profiles.get(it.e.from ?? '')?.avatarUrl,
        state,
      ]);
      rows.push({ key: k(it.e.seq), sig, make: () => messageRow(this, c, it, { mine, first, seen, name }) });
    }
    for (const p of this.chat.pendingOf(c.id)) {
      const status = p.error ?? (this.chat.connection === 'live' ? 'live' : 'waiting');
      rows.push({ key: k(p.cid), sig: status, make: () => pendingRow(this.chat, p, (cid, edit) => this.takeBack(cid, edit)) });
    }
    reconcile(this.list, rows);
    if (atBottom || this.stickToBottom || this.list.dataset.conv !== c.id) this.list.scrollTop = this.list.scrollHeight;
    this.stickToBottom = false;
    this.list.dataset.conv = c.id;
    this.markHighlight(c);
  }

  /** The search hit the conversation was opened at: marked (on every redraw), scrolled to once. */
  private markHighlight(c: Conv) {
    const hl = this.chat.highlight?.conv === c.id ? this.chat.highlight : null;
    for (const el of this.list.querySelectorAll<HTMLElement>('.hit')) {
      if (Number(el.dataset.seq) !== hl?.seq) el.classList.remove('hit'), el.removeAttribute('aria-current');
    }
    const row = hl ? this.list.querySelector<HTMLElement>(`[data-seq="${hl.seq}"]`) : null;
    if (!row || !hl) return;
    row.classList.add('hit');
    row.setAttribute('aria-current', 'true');
    const key = `${hl.conv}:${hl.seq}`;
    if (this.scrolledTo === key) return;
    this.scrolledTo = key;
    row.scrollIntoView({ block: 'center' });
  }

  private redraw() {
    const c = this.chat.open ? this.chat.convs.get(this.chat.open) : undefined;
    if (c) this.renderMessages(c);
  }

  toggleActions(seq: number) {
    this.openSeq = this.openSeq === seq ? null : seq;
    this.redraw();
  }

  react(c: Conv, seq: number, emoji: string, on: boolean) {
    this.act(() => this.chat.socket.react(c.id, seq, emoji, on));
  }

  editorFor(seq: number) {
    return this.editing?.seq === seq ? this.editing.form : null;
  }

  /** Edits in place: the bubble becomes a text box with Save and Cancel (Enter saves, Escape cancels). */
  startEdit(c: Conv, m: Msg) {
    const input = h('textarea', { class: 'edit-box', 'data-testid': 'edit-input', 'aria-label': w.editLabel, rows: 2 });
    input.value = m.body ?? '';
    const save = h('button', { type: 'submit', class: 'primary', 'data-testid': 'edit-save' }, w.save);
    const form = h(
      'form',
      { class: 'editor', 'data-testid': 'editor' },
      input,
      h(
        'div',
        { class: 'row' },
        h('button', { type: 'button', 'data-testid': 'edit-cancel', onclick: () => this.endEdit() }, w.cancel),
        save,
      ),
    );
    const submit = () => {
      const body = input.value;
      if (body === m.body) return this.endEdit();
      if (!body.trim()) return void (this.error.textContent = w.editEmpty);
      save.disabled = true;
      this.error.textContent = '';
      this.chat.socket.edit(c.id, m.e.seq, body).then(
        () => this.endEdit(),
        (err) => {
          save.disabled = false;
          this.error.textContent = errorSentence(err);
        },
      );
    };
    form.onsubmit = (ev) => (ev.preventDefault(), submit());
    input.onkeydown = (ev) => {
      if (ev.key === 'Escape') ev.stopPropagation(), this.endEdit();
      else if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) ev.preventDefault(), submit();
    };
    this.editing = { seq: m.e.seq, form };
    this.openSeq = null;
    this.redraw();
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }

  private endEdit() {
    const seq = this.editing?.seq;
    this.editing = null;
    this.redraw();
    // Back to the message's own actions button, where the keyboard was.
    if (seq !== undefined) this.list.querySelector<HTMLElement>(`[data-seq="${seq}"] [data-testid="more"]`)?.focus();
  }

  askDelete(c: Conv, m: Msg) {
    void confirmDialog({ title: w.deleteTitle, body: w.deleteBody, confirm: w.delete, danger: true }).then((yes) => {
      if (yes) this.act(() => this.chat.socket.delete(c.id, m.e.seq));
      this.openSeq = null;
      this.redraw();
    });
  }

  /** A refused send taken back: into the composer to edit, or dropped. */
  private takeBack(cid: string, edit: boolean) {
    const text = this.chat.takeBack(cid);
    if (edit && text) this.composer.restore(text);
  }

  private act(fn: () => Promise<unknown>) {
    this.error.textContent = '';
    fn().catch((err) => (this.error.textContent = errorSentence(err)));
  }
}
