/**
 * The page's address is its state: `#/` is the conversation list, `#/c/<id>` a conversation. A
 * reload keeps the open conversation, a notification's link opens one, and the browser's back
 * button goes from a conversation to the list (on a phone, from one screen to the other).
 */

const CONV = /^#\/c\/([0-9a-f-]{36})$/;

/** The conversation the address names, if any. */
export function routedConv(): string | null {
  return CONV.exec(location.hash)?.[1] ?? null;
}

type Listener = (conv: string | null) => void;
const listeners = new Set<Listener>();

/** Calls `fn` with the routed conversation whenever the address changes (links, back, forward). */
export function onRoute(fn: Listener) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function changed() {
  const conv = routedConv();
  for (const fn of listeners) fn(conv);
}

// The back and forward buttons fire popstate; a typed or linked address fires hashchange.
window.addEventListener('popstate', changed);
window.addEventListener('hashchange', changed);

/** Opens a conversation: a new history entry, so back returns to where the user was. */
export function goConv(id: string) {
  if (routedConv() === id) return;
  // Marked as ours: the back control can then go back instead of adding an entry.
  history.pushState({ hubbub: true }, '', `#/c/${id}`);
  changed();
}

/**
 * Back to the list. When the conversation was opened from this page, it is the browser's own
 * back (so the history does not grow); when it came from a link or a reload, the address is replaced.
 */
export function goList() {
  if (!routedConv()) return;
  if ((history.state as { hubbub?: boolean } | null)?.hubbub) return history.back();
  history.replaceState(null, '', '#/');
  changed();
}

/** Forgets a conversation that is not there (left, removed, a stale link): the list, in place. */
export function replaceWithList() {
  history.replaceState(null, '', '#/');
  changed();
}
