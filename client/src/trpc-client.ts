import { createTRPCClient, httpBatchLink, retryLink, TRPCClientError } from '@trpc/client';
import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import type { AppRouter } from './app-router.ts';
import { HubbubError } from './errors.ts';
import type { TokenRequest } from './socket-types.ts';

export type { AppRouter };
/** Every procedure's input: `ApiInputs['conversations']['history']`. */
export type ApiInputs = inferRouterInputs<AppRouter>;
/** Every procedure's output, as it arrives (dates as ISO strings). */
export type ApiOutputs = inferRouterOutputs<AppRouter>;

/** The fetch tRPC's link takes: the global one fits, as does undici's. */
export type Fetch = NonNullable<Parameters<typeof httpBatchLink<AppRouter>>[0]['fetch']>;

export interface ApiClientOptions {
  /** The hub's tRPC endpoint, e.g. `http://localhost:3000/trpc`. */
  url: string;
  /**
   * The access token, asked for every request batch; null or undefined for public calls. A call
   * refused with `UNAUTHORIZED` is tried once more after asking again with `{ refresh: true }`.
   */
  getToken?: (req: TokenRequest) => string | null | undefined | Promise<string | null | undefined>;
  /** Abort a request batch after this many ms (default 30 000; 0 for none). One call can pass its own `signal`. */
  requestTimeoutMs?: number;
  /** A fetch implementation (Node 18 and later and browsers have one built in). */
  fetch?: Fetch;
}

/** A tRPC client typed by the hub's `AppRouter`: `api.conversations.list.query()` and so on. */
export function createApiClient(opts: ApiClientOptions) {
  let refresh = false;
  const getToken = opts.getToken;
  const batch = httpBatchLink<AppRouter>({
    url: opts.url,
    fetch: withTimeout(opts.fetch, opts.requestTimeoutMs ?? 30_000),
    headers: async () => {
      const ask = refresh;
      refresh = false;
      const t = await getToken?.({ refresh: ask });
      return t ? { authorization: `Bearer ${t}` } : {};
    },
  });
  if (!getToken) return createTRPCClient<AppRouter>({ links: [batch] });
  return createTRPCClient<AppRouter>({
    links: [
      retryLink({
        // Refused before it ran (the token expired or was revoked): once more with a fresh token.
        retry: ({ error, attempts }) => attempts === 1 && error.data?.code === 'UNAUTHORIZED' && (refresh = true),
      }),
      batch,
    ],
  });
}

/** The fetch with a timeout added to each request's own signal. */
function withTimeout(given: Fetch | undefined, ms: number): Fetch {
  const f: Fetch = given ?? ((url, init) => fetch(url, init as RequestInit));
  if (ms <= 0) return f;
  return async (url, init) => {
    const ac = new AbortController();
    const outer = init?.signal;
    const onAbort = () => ac.abort(outer?.reason);
    if (outer?.aborted) onAbort();
    else outer?.addEventListener('abort', onAbort);
    const timer = setTimeout(() => ac.abort(new HubbubError('TIMEOUT', `no answer from the API in ${ms} ms`)), ms);
    try {
      return await f(url, { ...init, signal: ac.signal });
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onAbort);
    }
  };
}

export type ApiClient = ReturnType<typeof createApiClient>;

/**
 * A failed call as one sentence for people: zod issues become "password: too short (at least 8
 * characters)" rather than the JSON array tRPC carries in `message`.
 */
export function errorText(err: unknown): string {
  if (err instanceof TRPCClientError) {
    const data = err.data as { zodIssues?: Issue[] } | undefined;
    if (Array.isArray(data?.zodIssues) && data.zodIssues.length) return data.zodIssues.map(issueText).join(' ');
    const issues = parseIssues(err.message);
    if (issues) return issues;
    return sentence(err.message);
  }
  if (err instanceof Error) return sentence(err.message);
  return 'Something went wrong.';
}

interface Issue {
  code?: string;
  path?: (string | number)[];
  message?: string;
  minimum?: number | bigint;
  maximum?: number | bigint;
  origin?: string;
  format?: string;
}

function parseIssues(message: string): string | null {
  if (!message.trimStart().startsWith('[')) return null;
  let issues: Issue[];
  try {
    issues = JSON.parse(message) as Issue[];
  } catch {
    return null;
  }
  if (!Array.isArray(issues) || !issues.length) return null;
  return issues.map(issueText).join(' ');
}

const fieldNames: Record<string, string> = {
  password: 'The password',
  next: 'The new password',
  username: 'The username',
  email: 'The email address',
  displayName: 'The display name',
  login: 'The username or email',
  title: 'The title',
  query: 'The search',
  body: 'The message',
};

function issueText(i: Issue): string {
  const key = String(i.path?.at(-1) ?? '');
  const field = fieldNames[key] ?? (key ? `The ${key.replace(/([A-Z])/g, ' $1').toLowerCase()}` : 'The input');
  const unit = i.origin === 'string' ? 'characters' : i.origin === 'array' ? 'items' : '';
  switch (i.code) {
    case 'too_small':
      return i.origin === 'string' && Number(i.minimum) === 1
        ? `${field} must not be empty.`
        : `${field} must be at least ${i.minimum} ${unit}`.trim() + '.';
    case 'too_big':
      return `${field} must be at most ${i.maximum} ${unit}`.trim() + '.';
    case 'invalid_format':
      return i.format === 'email' ? `${field} is not valid.` : `${field} ${customPredicate(i.message) ?? 'has the wrong format'}.`;
    case 'unrecognized_keys':
      return 'The request had fields the server does not know.';
    default:
      return `${field} ${customPredicate(i.message) ?? 'is invalid'}.`.replace(/\.\.$/, '.');
  }
}

/**
 * The server's own messages are predicates written to follow the field's name ("must be an
 * https URL"); zod's generic ones ("Invalid input: expected string") are not, so they become
 * "is invalid".
 */
function customPredicate(message: string | undefined): string | null {
  if (!message || /^Invalid\b/.test(message)) return null;
  return message;
}

function sentence(s: string): string {
  const t = s.trim();
  if (!t) return 'Something went wrong.';
  return t[0]!.toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? '' : '.');
}
