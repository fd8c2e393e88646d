import { type AttachmentMeta, errorText, uploadFile } from '@hubbub/client';
import type { Chat } from './chat.ts';
import { h, replace, srOnly } from './dom.ts';

const words = {
  attach: 'Attach files',
  uploading: (name: string, pct: number) => `Uploading ${name}: ${pct}%`,
  failed: (name: string, why: string) => `${name} was not sent: ${why}`,
  open: (name: string, size: string) => `Download ${name}, ${size}`,
  download: 'Download ',
  image: (name: string) => `Image: ${name}`,
};

export function formatSize(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * A message's files: images inline (the tiny preview the event carries at once, the thumbnail
 * once its link is fetched, the full image a tap away), other files as cards with name and size.
 * Links are short-lived, so each is asked for when it is needed.
 */
export function attachmentList(chat: Chat, metas: AttachmentMeta[]) {
  return h(
    'div',
    { class: 'attachments', 'data-testid': 'attachments' },
    metas.map((m) => (m.width && m.height ? imageTile(chat, m) : fileCard(chat, m))),
  );
}

function imageTile(chat: Chat, m: AttachmentMeta) {
  const scale = Math.min(1, 320 / Math.max(m.width!, m.height!));
  const img = h('img', {
    class: 'att-image',
    alt: words.image(m.name),
    'data-testid': 'attachment-image',
    width: Math.round(m.width! * scale),
    height: Math.round(m.height! * scale),
    src: m.preview ?? '',
  });
  const link = h(
    'a',
    { href: '#', class: 'att-link', 'aria-label': words.image(m.name), onclick: (ev: Event) => open(ev, chat, m.id) },
    img,
  );
  chat.session.api.attachments.get.query({ id: m.id }).then(
    (got) => {
      if (got.thumbnailUrl) {
        img.src = got.thumbnailUrl;
        img.dataset.loaded = 'thumb';
      }
    },
    (err) => console.warn('thumbnail link failed', errorText(err)),
  );
  return link;
}

function fileCard(chat: Chat, m: AttachmentMeta) {
  const size = formatSize(m.size);
  return h(
    'a',
    {
      href: '#',
      class: 'att-card',
      'data-testid': 'attachment-file',
      title: words.open(m.name, size),
      onclick: (ev: Event) => open(ev, chat, m.id),
    },
    srOnly(words.download),
    h('span', { class: 'att-name' }, m.name),
    h('span', { class: 'att-size' }, size),
  );
}

/** Asks for a fresh link (membership is checked now) and opens it. */
function open(ev: Event, chat: Chat, id: string) {
  ev.preventDefault();
  chat.session.api.attachments.get.query({ id }).then(
    (got) => window.open(got.url, '_blank', 'noopener'),
    (err) => console.warn('download link failed', errorText(err)),
  );
}

/**
 * Files into the open conversation: from the attach button, a drop or a paste. Each is uploaded
 * with its progress shown, then sent as a message of its own.
 */
export class Uploader {
  readonly input = h('input', { type: 'file', multiple: true, class: 'sr-only', id: 'attach-input', tabindex: -1, 'aria-hidden': 'true' });
  readonly button = h(
    'button',
    { type: 'button', class: 'attach', 'data-testid': 'attach', 'aria-label': words.attach, title: words.attach },
    '📎',
  );
  readonly status = h('ul', { class: 'uploads', 'data-testid': 'uploads', 'aria-live': 'polite' });

  constructor(private readonly chat: Chat) {
    this.button.onclick = () => this.input.click();
    this.input.onchange = () => {
      this.add([...(this.input.files ?? [])]);
      this.input.value = '';
    };
  }

  /** Files from a paste or drop event's data (none: the event is left alone). */
  take(data: DataTransfer | null): boolean {
    const files = [...(data?.files ?? [])];
    if (!files.length) return false;
    this.add(files);
    return true;
  }

  add(files: File[]) {
    const conv = this.chat.open;
    if (!conv) return;
    for (const file of files) void this.one(conv, file);
  }

  private async one(conv: string, file: File) {
    const row = h('li', { 'data-testid': 'upload' }, words.uploading(file.name, 0));
    const bar = h('progress', { max: 100, value: 0, 'aria-hidden': 'true' });
    row.append(bar);
    this.status.append(row);
    try {
      const meta = await uploadFile(this.chat.session.api, {
        baseUrl: location.origin,
        conversationId: conv,
        file,
        onProgress: (sent, total) => {
          const pct = total ? Math.round((sent / total) * 100) : 100;
          bar.value = pct;
          row.firstChild!.textContent = words.uploading(file.name, pct);
        },
      });
      // The upload is done; the message goes through the outbox, so a send during a reconnect
      // waits there (shown pending, kept across a reload) and is retried with its cid.
      const problem = this.chat.sendFiles(conv, [meta]);
      if (problem) throw new Error(problem);
      row.remove();
    } catch (err) {
      replace(row, h('span', { class: 'error', role: 'alert' }, words.failed(file.name, errorText(err))));
      setTimeout(() => row.remove(), 8000);
    }
  }
}
