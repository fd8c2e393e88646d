import type { Chat, Profile } from './chat.ts';
import { avatar, h } from './dom.ts';
import { icon } from './icons.ts';
import { goConv } from './router.ts';
import { errorSentence, w } from './words.ts';

let dialogs = 0;

/** A modal <dialog>: named by its heading, closed by Escape or ✕, focus back where it was after. */
export function modal(title: string, body: HTMLElement, testid: string) {
  const id = `dialog-title-${++dialogs}`;
  const opener = document.activeElement as HTMLElement | null;
  const dlg = h(
    'dialog',
    { class: 'card dialog', 'data-testid': testid, 'aria-labelledby': id },
    h(
      'header',
      {},
      h('h2', { id }, title),
      h(
        'button',
        { type: 'button', class: 'icon', 'aria-label': w.close, 'data-testid': 'dialog-close', onclick: () => dlg.close() },
        icon('close'),
      ),
    ),
    body,
  );
  dlg.addEventListener('close', () => {
    dlg.remove();
    if (opener?.isConnected) opener.focus();
  });
  document.body.appendChild(dlg);
  dlg.showModal();
  return dlg;
}

/** The page's own "are you sure?": resolves true for the confirm button, false for Cancel, Escape or ✕. */
export function confirmDialog(o: { title: string; body: string; confirm: string; danger?: boolean }): Promise<boolean> {
  return new Promise((resolve) => {
    let yes = false;
    const cancel = h('button', { type: 'button', 'data-testid': 'confirm-cancel', onclick: () => dlg.close() }, w.cancel);
    const ok = h(
      'button',
      {
        type: 'button',
        class: o.danger ? 'primary danger-fill' : 'primary',
        'data-testid': 'confirm-ok',
        onclick: () => ((yes = true), dlg.close()),
      },
      o.confirm,
    );
    const dlg = modal(
      o.title,
      h('div', { class: 'stack' }, h('p', {}, o.body), h('div', { class: 'row end' }, cancel, ok)),
      'confirm-dialog',
    );
    dlg.setAttribute('role', 'alertdialog');
    dlg.addEventListener('close', () => resolve(yes));
    // The safe choice has the focus: Enter on a stray key press cancels.
    cancel.focus();
  });
}

/** A user search box: results as you type (names and usernames), each with an action button. */
function userSearch(chat: Chat, action: string, onPick: (p: Profile) => void, error: HTMLElement) {
  const results = h('ul', { class: 'results', 'data-testid': 'search-results', 'aria-live': 'polite' });
  let timer: ReturnType<typeof setTimeout> | undefined;
  let latest: { q: string; found: Profile[] } = { q: '', found: [] };
  const input = h('input', {
    type: 'search',
    id: `user-search-${++dialogs}`,
    placeholder: w.searchPeople,
    'data-testid': 'user-search',
    autocomplete: 'off',
  });
  const label = h('label', { for: input.id, class: 'sr-only' }, w.searchLabel);
  const search = async (q: string) => {
    if (latest.q === q) return latest.found;
    const found = (await chat.session.api.profiles.search.query({ query: q, limit: 8 })).filter((p) => p.id !== chat.me.id);
    latest = { q, found };
    return found;
  };
  input.oninput = () => {
    clearTimeout(timer);
    // Cleared as the user types, not when the search below answers: a submit made meanwhile keeps its error.
    error.textContent = '';
    timer = setTimeout(async () => {
      const q = input.value.trim().replace(/^@/, '');
      if (!q) return results.replaceChildren();
      try {
        const found = await search(q);
        if (input.value.trim().replace(/^@/, '') !== q) return;
        results.replaceChildren(
          ...(found.length
            ? found.map((p) =>
                h(
                  'li',
                  { 'data-testid': 'search-result', 'data-username': p.username },
                  avatar(p),
                  h('span', { class: 'grow' }, p.displayName, h('small', {}, ' @' + p.username)),
                  h('button', { type: 'button', 'aria-label': `${action}: ${p.displayName}`, onclick: () => onPick(p) }, action),
                ),
              )
            : [h('li', { class: 'empty' }, w.noMatch(q))]),
        );
      } catch (err) {
        error.textContent = errorSentence(err);
      }
    }, 200);
  };
  /** The one person the box names: an exact username, else the only match by name or username. */
  const chosen = async (): Promise<Profile> => {
    const q = input.value.trim().replace(/^@/, '');
    if (!q) throw new Error(w.typeName);
    const found = await search(q);
    const exact = found.find((p) => p.username.toLowerCase() === q.toLowerCase());
    if (exact) return exact;
    if (found.length === 1) return found[0]!;
    throw new Error(found.length ? w.pickOne(q) : w.noSuchUser(q));
  };
  return { input: h('div', { class: 'search' }, label, input), field: input, results, chosen };
}

const errorLine = () => h('p', { class: 'error', role: 'alert', 'data-testid': 'dialog-error' });

export function newDirectDialog(chat: Chat) {
  const error = errorLine();
  const start = async (p: Profile) => {
    try {
      const c = await chat.session.api.conversations.createDirect.mutate({ userId: p.id });
      chat.profiles.set(p.id, p);
      await chat.loadConvs();
      dlg.close();
      goConv(c.id);
    } catch (err) {
      error.textContent = errorSentence(err);
    }
  };
  const s = userSearch(chat, w.message, (p) => void start(p), error);
  const form = h(
    'form',
    { class: 'stack' },
    s.input,
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'start-dm' }, w.startConversation),
    error,
    s.results,
  );
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    try {
      await start(await s.chosen());
    } catch (err) {
      error.textContent = errorSentence(err);
    }
  };
  const dlg = modal(w.newMessage, form, 'dm-dialog');
  s.field.focus();
}

export function newGroupDialog(chat: Chat) {
  const error = errorLine();
  const picked = new Map<string, Profile>();
  const chips = h('ul', { class: 'chips', 'data-testid': 'picked', 'aria-label': w.chosen });
  const drawChips = () =>
    chips.replaceChildren(
      ...[...picked.values()].map((p) =>
        h(
          'li',
          { class: 'chip' },
          p.displayName,
          h(
            'button',
            { type: 'button', class: 'icon', 'aria-label': w.removeName(p.displayName), onclick: () => (picked.delete(p.id), drawChips()) },
            icon('close', 16),
          ),
        ),
      ),
    );
  const title = h('input', {
    name: 'title',
    id: 'group-title',
    placeholder: w.groupName,
    'data-testid': 'group-title',
    autocomplete: 'off',
  });
  const s = userSearch(chat, w.add, (p) => (picked.set(p.id, p), drawChips(), (error.textContent = '')), error);
  const form = h(
    'form',
    { class: 'stack' },
    h('label', { for: 'group-title', class: 'sr-only' }, w.groupName),
    title,
    chips,
    s.input,
    s.results,
    error,
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'create-group' }, w.createGroup),
  );
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    if (!title.value.trim()) return void (error.textContent = w.nameGroup);
    if (!picked.size) return void (error.textContent = w.addSomeone);
    try {
      const c = await chat.session.api.conversations.createGroup.mutate({ title: title.value, memberIds: [...picked.keys()] });
      for (const p of picked.values()) chat.profiles.set(p.id, p);
      await chat.loadConvs();
      dlg.close();
      goConv(c.id);
    } catch (err) {
      error.textContent = errorSentence(err);
    }
  };
  const dlg = modal(w.newGroup, form, 'group-dialog');
  title.focus();
}

/** A group's members: roles, presence, remove (owners and admins), add people, leave. */
export function membersDialog(chat: Chat) {
  const c = chat.open ? chat.convs.get(chat.open) : undefined;
  if (!c) return;
  const error = errorLine();
  const list = h('ul', { class: 'results', 'data-testid': 'members' });
  const act = async (fn: () => Promise<unknown>, close = false) => {
    error.textContent = '';
    try {
      await fn();
      await chat.loadConvs();
      if (close) dlg.close();
      else draw();
    } catch (err) {
      error.textContent = errorSentence(err);
    }
  };
  const draw = () => {
    const conv = chat.convs.get(c.id);
    if (!conv) return dlg.close();
    const mine = conv.role;
    list.replaceChildren(
      ...conv.members.map((m) => {
        const p = chat.profiles.get(m.userId);
        const online = chat.online.has(m.userId) || m.userId === chat.me.id;
        const canRemove = m.userId !== chat.me.id && (mine === 'owner' || (mine === 'admin' && m.role === 'member'));
        return h(
          'li',
          { 'data-testid': 'member', 'data-username': p?.username ?? '' },
          avatar(p, online),
          h(
            'span',
            { class: 'grow' },
            chat.name(m.userId),
            h('small', {}, ' ' + [w.role[m.role], online ? w.online : w.offline].filter(Boolean).join(', ')),
          ),
          canRemove
            ? h(
                'button',
                {
                  type: 'button',
                  'data-testid': 'remove-member',
                  'aria-label': w.removeName(chat.name(m.userId)),
                  onclick: () =>
                    void act(() => chat.session.api.conversations.removeMember.mutate({ conversationId: c.id, userId: m.userId })),
                },
                w.remove,
              )
            : null,
        );
      }),
    );
  };
  const s = userSearch(
    chat,
    w.add,
    (p) => {
      chat.profiles.set(p.id, p);
      void act(() => chat.session.api.conversations.addMembers.mutate({ conversationId: c.id, userIds: [p.id] }));
    },
    error,
  );
  const leave = h(
    'button',
    {
      type: 'button',
      class: 'danger',
      'data-testid': 'leave-group',
      onclick: () =>
        void confirmDialog({ title: w.leaveTitle(chat.title(c)), body: w.leaveBody, confirm: w.leave, danger: true }).then((yes) => {
          if (yes) void act(() => chat.session.api.conversations.leave.mutate({ conversationId: c.id }), true);
        }),
    },
    w.leaveGroup,
  );
  const dlg = modal(
    chat.title(c),
    h('div', { class: 'stack' }, list, h('h3', {}, w.addPeople), s.input, s.results, error, leave),
    'members-dialog',
  );
  draw();
}
