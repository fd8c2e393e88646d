import type { Chat } from './chat.ts';
import { h } from './dom.ts';
import { loadDraft, saveDraft } from './outbox-store.ts';
import { MAX_BODY_CHARS, w } from './words.ts';
import { Uploader } from './attachments-view.ts';

/** The counter shows from this many characters left. */
const WARN_LEFT = 300;

/**
 * The message box. What is typed is never lost: it is kept as the conversation's draft (through
 * reloads), the length limit is said before sending (and Send is off past it, the text kept), and
 * a send is only cleared from the box once the page has taken it.
 */
export class Composer {
  readonly input = h('textarea', {
    rows: 1,
    id: 'composer',
    placeholder: w.composerPlaceholder,
    'data-testid': 'composer',
    'aria-describedby': 'composer-counter send-error',
  });
  readonly error = h('p', { class: 'error', role: 'alert', id: 'send-error', 'data-testid': 'send-error' });
  private counter = h('span', { class: 'counter', id: 'composer-counter', 'data-testid': 'counter', 'aria-live': 'polite' });
  private sendButton = h('button', { type: 'submit', class: 'primary', 'data-testid': 'send' }, w.send);
  /** Files: the attach button, pasted files (here) and dropped ones (the conversation view). */
  readonly uploader: Uploader;
  readonly el: HTMLFormElement;
  private conv: string | null = null;
  /** Called after a send was taken (to scroll to the bottom). */
  onSent: () => void = () => undefined;

  constructor(private readonly chat: Chat) {
    this.uploader = new Uploader(chat);
    this.el = h(
      'form',
      { class: 'composer', 'aria-label': w.composerLabel },
      this.uploader.status,
      this.uploader.input,
      this.uploader.button,
      h('label', { for: 'composer', class: 'sr-only' }, w.composerLabel),
      this.input,
      this.counter,
      this.sendButton,
    );
    this.input.onpaste = (ev) => {
      if (this.uploader.take(ev.clipboardData)) ev.preventDefault();
    };
    this.el.onsubmit = (ev) => {
      ev.preventDefault();
      const text = this.input.value;
      const problem = chat.send(text);
      this.error.textContent = problem ?? '';
      if (problem) return;
      this.set('');
      this.onSent();
    };
    this.input.onkeydown = (ev) => {
      // Enter sends, Shift+Enter is a new line; not while an input method is composing a character.
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        this.el.requestSubmit();
      }
    };
    this.input.oninput = () => {
      this.error.textContent = '';
      this.update();
      if (this.input.value) chat.typed();
    };
  }

  /** Shows a conversation's draft (switching saves nothing: each keystroke already did). */
  show(conv: string) {
    if (this.conv === conv) return;
    this.conv = conv;
    this.error.textContent = '';
    this.input.value = loadDraft(this.chat.me.id, conv);
    this.update();
  }

  /** Puts text back in the box (a refused send taken back to edit), before what is there. */
  restore(text: string) {
    this.set(this.input.value ? `${text}\n${this.input.value}` : text);
    this.input.focus();
  }

  focus() {
    this.input.focus({ preventScroll: true });
  }

  private set(text: string) {
    this.input.value = text;
    this.update();
  }

  /** Saves the draft, and says how much room is left once it gets short. */
  private update() {
    const text = this.input.value;
    if (this.conv) saveDraft(this.chat.me.id, this.conv, text);
    const left = MAX_BODY_CHARS - text.length;
    this.counter.textContent = left < 0 ? w.charsOver(-left) : left <= WARN_LEFT ? w.charsLeft(left) : '';
    this.counter.className = `counter${left < 0 ? ' over' : ''}`;
    this.sendButton.disabled = left < 0;
    // The box grows with its text, up to a third of the window.
    this.input.style.height = 'auto';
    this.input.style.height = `${Math.min(this.input.scrollHeight + 2, Math.max(120, window.innerHeight / 3))}px`;
  }
}
