import { snippetParts, type SearchHit } from '@hubbub/client';
import type { Chat } from './chat.ts';
import { h, replace, timeOf } from './dom.ts';
import { registerPanel } from './panels.ts';
import { goConv } from './router.ts';
import { errorSentence, w } from './words.ts';

/** The last search, kept while the person moves between tabs and conversations. */
let last: { query: string; hits: SearchHit[]; error?: string } | null = null;

/** A snippet as text nodes and <mark> elements: never HTML from the server. */
const snippet = (s: string) =>
  h(
    'span',
    { class: 'snippet', 'data-testid': 'hit-snippet' },
    snippetParts(s).map((p) => (p.mark ? h('mark', {}, p.text) : p.text)),
  );

function results(chat: Chat, el: HTMLElement) {
  if (!last) return replace(el);
  if (last.error) return replace(el, h('p', { class: 'error', role: 'alert' }, last.error));
  // Grouped by conversation, the groups in the order of their best hit.
  const groups = new Map<string, SearchHit[]>();
  for (const hit of last.hits) groups.set(hit.conversationId, [...(groups.get(hit.conversationId) ?? []), hit]);
  replace(
    el,
    h('p', { class: 'search-count', role: 'status' }, w.searchCount(last.hits.length)),
    [...groups].map(([conv, hits]) => {
      const c = chat.convs.get(conv);
      return h(
        'section',
        { class: 'search-group', 'data-testid': 'search-group' },
        h('h3', {}, c ? chat.title(c) : w.unknownConversation),
        h(
          'ul',
          {},
          hits.map((hit) =>
            h(
              'li',
              {},
              h(
                'a',
                {
                  href: `#/c/${conv}`,
                  class: 'search-hit',
                  'data-testid': 'search-hit',
                  'data-conv': conv,
                  'data-seq': hit.seq,
                  onclick: (ev: Event) => {
                    ev.preventDefault();
                    void chat.openAt(conv, hit.seq).then(() => goConv(conv));
                  },
                },
                h('span', { class: 'hit-meta' }, h('strong', {}, chat.name(hit.from)), ' ', h('small', {}, timeOf(hit.ts))),
                snippet(hit.snippet),
              ),
            ),
          ),
        ),
      );
    }),
  );
}

/** Message search: a box, and the hits grouped by conversation with their matches marked. */
function renderSearch(chat: Chat, el: HTMLElement) {
  const input = h('input', {
    type: 'search',
    id: 'search-input',
    name: 'q',
    'data-testid': 'search-input',
    maxlength: 500,
    autocomplete: 'off',
    placeholder: w.searchPlaceholder,
    value: last?.query ?? '',
  });
  const out = h('div', { class: 'search-results', 'data-testid': 'search-results' });
  const form = h(
    'form',
    { class: 'search-form', role: 'search' },
    h('label', { for: 'search-input', class: 'sr-only' }, w.searchMessagesLabel),
    input,
    h('button', { type: 'submit', 'data-testid': 'search-submit' }, w.searchButton),
  );
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const query = input.value.trim();
    if (!query) return;
    try {
      const r = await chat.session.api.messages.search.query({ query, limit: 50 });
      last = { query, hits: r.hits };
      await chat.loadProfiles(r.hits.flatMap((hit) => (hit.from ? [hit.from] : [])));
    } catch (err) {
      last = { query, hits: [], error: errorSentence(err) };
    }
    results(chat, out);
  };
  replace(el, form, out);
  results(chat, out);
}

registerPanel({ id: 'search', label: w.search, render: renderSearch });
