import { SocketClient } from './socket-client.ts';
import type { SocketClientOptions } from './socket-types.ts';
import { createApiClient, type ApiClient, type ApiInputs, type ApiOutputs, type Fetch } from './trpc-client.ts';

export interface HubbubClientOptions extends Omit<SocketClientOptions, 'url'> {
  /** The hub's address, e.g. `http://localhost:3000` (`https://…` behind TLS): the API is at `/trpc`, the socket at `/ws`. */
  url: string;
  /** Default timeout of API requests in ms (30 000); the socket's requests have `requestTimeoutMs`. */
  apiTimeoutMs?: number;
  fetch?: Fetch;
}

type HistoryOptions = Omit<ApiInputs['conversations']['history'], 'conversationId'>;
type SearchOptions = Omit<ApiInputs['messages']['search'], 'query'>;

/**
 * The socket client and the typed API together, sharing one `getToken`: what most apps want.
 * Everything of `SocketClient` (events, `send`, `markRead`, presence, cursors), plus `api` and
 * the calls that need both.
 */
export class HubbubClient extends SocketClient {
  /** The tRPC client typed by the hub's router: `client.api.conversations.list.query()`. */
  readonly api: ApiClient;

  constructor(opts: HubbubClientOptions) {
    const base = opts.url.replace(/\/+$/, '');
    const { apiTimeoutMs, fetch, ...socket } = opts;
    super({ ...socket, url: base.replace(/^http/, 'ws') + '/ws' });
    const api: Parameters<typeof createApiClient>[0] = { url: `${base}/trpc`, getToken: opts.getToken };
    if (apiTimeoutMs !== undefined) api.requestTimeoutMs = apiTimeoutMs;
    if (fetch) api.fetch = fetch;
    this.api = createApiClient(api);
  }

  /** A page of a conversation's events (`beforeSeq` to page back, `aroundSeq` to open at one; at most `limit`, up to 100). */
  history(conv: string, opts: HistoryOptions = {}): Promise<ApiOutputs['conversations']['history']> {
    return this.api.conversations.history.query({ ...opts, conversationId: conv });
  }

  /**
   * Message search (`from:`, `in:`, `"phrases"`, dates, `has:mention`; docs/search.md). Render a
   * hit's snippet with `snippetParts`; open it with `history(conv, { aroundSeq: hit.seq })`.
   */
  search(query: string, opts: SearchOptions = {}): Promise<ApiOutputs['messages']['search']> {
    return this.api.messages.search.query({ ...opts, query });
  }

  /**
   * Every member's read cursor in a conversation, from the hub; kept in `cursors` and moved on by
   * `read` frames from then on.
   */
  async readCursors(conv: string): Promise<Map<string, number>> {
    const got = await this.api.conversations.readCursors.query({ conversationId: conv });
    let m = this.cursors.get(conv);
    if (!m) this.cursors.set(conv, (m = new Map()));
    for (const [user, seq] of Object.entries(got)) if (seq > (m.get(user) ?? 0)) m.set(user, seq);
    return m;
  }
}

/** Creates a `HubbubClient`; call `connect()` to open its socket. */
export function createClient(opts: HubbubClientOptions): HubbubClient {
  return new HubbubClient(opts);
}
