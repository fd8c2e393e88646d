import type { StoredEvent } from '../store/message-store.ts';

/**
 * Message search: a port with one adapter per store that can search (message-search.postgres.ts
 * on PostgreSQL and PGlite) and one for a store that cannot (message-search.unsupported.ts, the
 * Cassandra store). Every searching adapter passes test/contracts/search.contract.ts.
 *
 * The index is filled after the append's transaction (SearchIndexer), never inside it: the send
 * path pays nothing for search. Visibility is decided at query time from the memberships, so a
 * membership change takes effect on the next search.
 */

export type SearchOrder = 'relevance' | 'recent';

/** A resolved query: names already turned into ids by the service. */
export interface SearchRequest {
  /** The caller: only conversations they are a member of now are searched. */
  userId: string;
  /** Free text for websearch_to_tsquery; empty for operators only. */
  text: string;
  /** Sender ids (any of). Empty: any sender. */
  from: string[];
  /** Conversation ids (any of). Empty: every conversation of the caller. */
  in: string[];
  before?: Date;
  after?: Date;
  /** Only messages whose current text mentions the caller. */
  hasMention: boolean;
  /** Only the newest `historyDepth` events of each conversation can be found (the caller's plan). */
  historyDepth: number;
  order: SearchOrder;
  /** Where the previous page ended (SearchPage.next), for the same request. */
  cursor?: SearchPosition;
  limit: number;
}

/** A keyset position: the sort key of the last hit of a page. */
export interface SearchPosition {
  /** Relevance order: the rank. Recent order: the time in ms. */
  key: number;
  conversationId: string;
  seq: number;
}

export interface SearchHit {
  conversationId: string;
  seq: number;
  /** The message's event id. */
  id: string;
  from: string | null;
  /** Milliseconds since the epoch. */
  ts: number;
  /** The current text around the match, HTML-escaped, matched words in `<mark>`…`</mark>`. */
  snippet: string;
}

export interface SearchPage {
  hits: SearchHit[];
  /** Present when there may be more hits. */
  next?: SearchPosition;
}

export interface MessageSearch {
  search(req: SearchRequest): Promise<SearchPage>;
  /** Removes everything of an erased account from the index, in every conversation. */
  eraseSender(userId: string): Promise<void>;
}

/** Brings the index up to date after appends; runs beside the hub, off the ack path. */
export interface SearchIndexer {
  /** Told of every event this replica made durable, in seq order per conversation; must not block (it only buffers). */
  appended(e: StoredEvent): void;
  /** Resolves once every conversation noted so far is indexed up to what was noted. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

/**
 * PostgreSQL's default text search parser reads `<b>` as an HTML tag and `&amp;` as an entity:
 * it indexes neither and ts_headline drops them from the snippet. A chat message is plain text,
 * so `<` and `&` become private-use characters (blanks to the parser) before indexing and
 * headlining, and come back in the snippet.
 */
export const PLAIN_TEXT_SQL = (column: string) => `translate(${column}, '<&', chr(57344) || chr(57345))`;
const restore = (s: string) => s.replace(/\uE000/g, '<').replace(/\uE001/g, '&');

/**
 * A ts_headline result to the snippet form: everything HTML-escaped, the words between the
 * markers in `<mark>`. The markers are random per query, so no message text can forge one.
 */
export function markSnippet(raw: string, start: string, stop: string): string {
  const esc = (s: string) => escapeHtml(restore(s));
  const parts = raw.split(start);
  let out = esc(parts[0]!);
  for (const p of parts.slice(1)) {
    const end = p.indexOf(stop);
    out += end < 0 ? `<mark>${esc(p)}</mark>` : `<mark>${esc(p.slice(0, end))}</mark>${esc(p.slice(end + stop.length))}`;
  }
  return out;
}
