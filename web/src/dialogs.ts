import { errorText } from '@hubbub/client';
import type { Chat, Profile } from './chat.ts';
import { avatar, h } from './dom.ts';

/** A modal dialog; resolves when closed. */
export function modal(title: string, body: HTMLElement, testid: string) {
  const dlg = h('dialog', { class: 'card dialog', 'data-testid': testid }, h('header', {}, h('h2', {}, title), h('button', { class: 'icon', 'aria-label': 'Close', onclick: () => dlg.close() }, '✕')), body);
  dlg.addEventListener('close', () => dlg.remove());
  document.body.appendChild(dlg);
  dlg.showModal();
  return dlg;
}

/** A user search box: results as you type, each with an action button. */
function userSearch(chat: Chat, action: string, onPick: (p: Profile) => void, error: HTMLElement) {
  const results = h('ul', { class: 'results', 'data-testid': 'search-results' });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const input = h('input', { type: 'search', placeholder: 'Search by username or name', 'data-testid': 'user-search', autocomplete: 'off' });
  input.oninput = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = input.value.trim();
      error.textContent = '';
      if (!q) return results.replaceChildren();
      try {
        const found = (await chat.session.api.profiles.search.query({ query: q, limit: 8 })).filter((p) => p.id !== chat.me.id);
        results.replaceChildren(
          ...(found.length
            ? found.map((p) =>
                h('li', { 'data-testid': 'search-result', 'data-username': p.username }, avatar(p), h('span', { class: 'grow' }, p.displayName, h('small', {}, ' @' + p.username)), h('button', { type: 'button', onclick: () => onPick(p) }, action)),
              )
            : [h('li', { class: 'empty' }, `No one matches “${q}”.`)]),
        );
      } catch (err) {
        error.textContent = errorText(err);
      }
    }, 200);
  };
  return { input, results };
}

/** Looks a user up by exact username, with a sentence when there is none. */
async function byUsername(chat: Chat, username: string): Promise<Profile> {
  const name = username.trim().replace(/^@/, '');
  if (!name) throw new Error('Type a username first.');
  try {
    return await chat.session.api.profiles.get.query({ username: name });
  } catch (err) {
    if ((err as { data?: { code?: string } }).data?.code === 'NOT_FOUND' || (err as { data?: { code?: string } }).data?.code === 'BAD_REQUEST')
      throw new Error(`There is no user called “${name}”.`);
    throw err;
  }
}

export function newDirectDialog(chat: Chat) {
  const error = h('p', { class: 'error', role: 'alert', 'data-testid': 'dialog-error' });
  const start = async (p: Profile) => {
    try {
      const c = await chat.session.api.conversations.createDirect.mutate({ userId: p.id });
      chat.profiles.set(p.id, p);
      await chat.loadConvs();
      dlg.close();
      await chat.openConv(c.id);
    } catch (err) {
      error.textContent = errorText(err);
    }
  };
  const { input, results } = userSearch(chat, 'Message', (p) => void start(p), error);
  const form = h('form', { class: 'stack' }, input, h('button', { type: 'submit', class: 'primary', 'data-testid': 'start-dm' }, 'Start conversation'), error, results);
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    try {
      await start(await byUsername(chat, input.value));
    } catch (err) {
      error.textContent = errorText(err);
    }
  };
  const dlg = modal('New message', form, 'dm-dialog');
  input.focus();
}

export function newGroupDialog(chat: Chat) {
  const error = h('p', { class: 'error', role: 'alert', 'data-testid': 'dialog-error' });
  const picked = new Map<string, Profile>();
  const chips = h('div', { class: 'chips', 'data-testid': 'picked' });
  const drawChips = () =>
    chips.replaceChildren(...[...picked.values()].map((p) => h('span', { class: 'chip' }, p.displayName, h('button', { type: 'button', class: 'icon', onclick: () => (picked.delete(p.id), drawChips()) }, '✕'))));
  const title = h('input', { name: 'title', placeholder: 'Group name', 'data-testid': 'group-title' });
  const { input, results } = userSearch(chat, 'Add', (p) => (picked.set(p.id, p), drawChips()), error);
  const form = h('form', { class: 'stack' }, title, chips, input, results, error, h('button', { type: 'submit', class: 'primary', 'data-testid': 'create-group' }, 'Create group'));
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    if (!title.value.trim()) return void (error.textContent = 'Give the group a name.');
    try {
      const c = await chat.session.api.conversations.createGroup.mutate({ title: title.value, memberIds: [...picked.keys()] });
      for (const p of picked.values()) chat.profiles.set(p.id, p);
      await chat.loadConvs();
      dlg.close();
      await chat.openConv(c.id);
    } catch (err) {
      error.textContent = errorText(err);
    }
  };
  const dlg = modal('New group', form, 'group-dialog');
  title.focus();
}

/** A group's members: roles, presence, remove (owners and admins), add people, leave. */
export function membersDialog(chat: Chat) {
  const c = chat.open ? chat.convs.get(chat.open) : undefined;
  if (!c) return;
  const error = h('p', { class: 'error', role: 'alert', 'data-testid': 'dialog-error' });
  const list = h('ul', { class: 'results', 'data-testid': 'members' });
  const act = async (fn: () => Promise<unknown>, close = false) => {
    error.textContent = '';
    try {
      await fn();
      await chat.loadConvs();
      if (close) dlg.close();
      else draw();
    } catch (err) {
      error.textContent = errorText(err);
    }
  };
  const draw = () => {
    const conv = chat.convs.get(c.id);
    if (!conv) return dlg.close();
    const mine = conv.role;
    list.replaceChildren(
      ...conv.members.map((m) => {
        const p = chat.profiles.get(m.userId);
        const canRemove = m.userId !== chat.me.id && (mine === 'owner' || (mine === 'admin' && m.role === 'member'));
        return h(
          'li',
          { 'data-testid': 'member', 'data-username': p?.username ?? '' },
          avatar(p, chat.online.has(m.userId) || m.userId === chat.me.id),
          h('span', { class: 'grow' }, chat.name(m.userId), m.role !== 'member' ? h('small', {}, ` ${m.role}`) : null),
          canRemove ? h('button', { type: 'button', 'data-testid': 'remove-member', onclick: () => void act(() => chat.session.api.conversations.removeMember.mutate({ conversationId: c.id, userId: m.userId })) }, 'Remove') : null,
        );
      }),
    );
  };
  const { input, results } = userSearch(chat, 'Add', (p) => {
    chat.profiles.set(p.id, p);
    void act(() => chat.session.api.conversations.addMembers.mutate({ conversationId: c.id, userIds: [p.id] }));
  }, error);
  const leave = h('button', { type: 'button', class: 'danger', 'data-testid': 'leave-group', onclick: () => void act(() => chat.session.api.conversations.leave.mutate({ conversationId: c.id }), true) }, 'Leave group');
  const dlg = modal(chat.title(c), h('div', { class: 'stack' }, list, h('h3', {}, 'Add people'), input, results, error, leave), 'members-dialog');
  draw();
}
