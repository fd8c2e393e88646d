/** A tiny element builder: h('button', { class: 'x', onclick: fn }, 'text', child). */
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;
export type Child = Node | SVGElement | string | number | null | undefined | false | Child[];

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' && 'value' in el) (el as HTMLInputElement).value = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el: Node, children: Child[]) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
  }
}

export function replace(el: Element, ...children: Child[]) {
  el.replaceChildren();
  append(el, children);
}

/** A circle with the user's initials (or their avatar image), coloured from their id. */
export function avatar(p: { id: string; displayName: string; avatarUrl?: string | null } | undefined, online?: boolean) {
  const name = p?.displayName ?? '?';
  const initials =
    name
      .split(/\s+/)
      .filter(Boolean)
      .slice(0, 2)
      .map((w) => w[0]!.toUpperCase())
      .join('') || '?';
  let hash = 0;
  for (const ch of p?.id ?? '') hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  const face = p?.avatarUrl ? h('img', { src: p.avatarUrl, alt: '' }) : initials;
  // Hidden from screen readers: the name is always written beside it, and presence in words.
  return h(
    'span',
    { class: 'avatar', style: `background: hsl(${hash % 360} 45% 32%)`, title: name, 'aria-hidden': 'true' },
    face,
    online === undefined ? null : h('span', { class: online ? 'dot online' : 'dot', 'data-testid': 'presence' }),
  );
}

/** Text for screen readers only (what an icon or a colour says to the eye). */
export function srOnly(text: string) {
  return h('span', { class: 'sr-only' }, text);
}

export function timeOf(ts: number) {
  const d = new Date(ts);
  const today = new Date().toDateString() === d.toDateString();
  return today
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleDateString([], { month: 'short', day: 'numeric' });
}

export interface Row {
  /** Stable across renders (a message's conversation and seq). */
  key: string;
  /** Everything the row shows: an unchanged signature keeps the element that is on screen. */
  sig: string;
  make: () => HTMLElement;
}

const keyed = new WeakMap<Element, Map<string, { sig: string; el: HTMLElement }>>();

/**
 * Puts `rows` into `container`, building only rows that are new or changed and moving nothing
 * that stays: a read receipt arriving redraws one row, not the list, so a hover, a selection or
 * a click in progress on another message is not lost.
 */
export function reconcile(container: HTMLElement, rows: Row[]) {
  const prev = keyed.get(container) ?? new Map<string, { sig: string; el: HTMLElement }>();
  const next = new Map<string, { sig: string; el: HTMLElement }>();
  const els = rows.map((r) => {
    const old = prev.get(r.key);
    const el = old && old.sig === r.sig ? old.el : r.make();
    next.set(r.key, { sig: r.sig, el });
    return el;
  });
  keyed.set(container, next);
  let cursor = container.firstChild;
  for (const el of els) {
    if (cursor === el) {
      cursor = cursor.nextSibling;
      continue;
    }
    container.insertBefore(el, cursor);
  }
  while (cursor) {
    const n: ChildNode | null = cursor.nextSibling;
    container.removeChild(cursor);
    cursor = n;
  }
}
