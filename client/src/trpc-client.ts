import { createTRPCClient, httpBatchLink, TRPCClientError } from '@trpc/client';
import type { AppRouter } from './app-router.ts';

export type { AppRouter };

export interface ApiClientOptions {
  /** The hub's tRPC endpoint, e.g. `http://localhost:3000/trpc`. */
  url: string;
  /** Called for every request batch, so a refreshed access token is used; undefined for public calls. */
  token?: () => string | undefined | Promise<string | undefined>;
  /** A fetch implementation (Node 18 and later and browsers have one built in). */
  fetch?: Fetch;
}

/** The fetch tRPC's link takes: the global one fits, as does node-fetch's or undici's. */
export type Fetch = NonNullable<Parameters<typeof httpBatchLink<AppRouter>>[0]['fetch']>;

/** A tRPC client typed by the hub's `AppRouter`: `api.conversations.list.query()` and so on. */
export function createApiClient(opts: ApiClientOptions) {
  return createTRPCClient<AppRouter>({
    links: [
      httpBatchLink({
        url: opts.url,
        ...(opts.fetch ? { fetch: opts.fetch } : {}),
        headers: async () => {
          const t = await opts.token?.();
          return t ? { authorization: `Bearer ${t}` } : {};
        },
      }),
    ],
  });
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
      return i.format === 'email' ? `${field} is not a valid email address.` : `${field} ${i.message ?? 'has the wrong format'}.`;
    case 'unrecognized_keys':
      return 'The request had fields the server does not know.';
    default:
      return `${field} ${i.message ? i.message.replace(/^Invalid input: /, 'is invalid: ') : 'is invalid'}.`.replace(/\.\.$/, '.');
  }
}

function sentence(s: string): string {
  const t = s.trim();
  if (!t) return 'Something went wrong.';
  return t[0]!.toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? '' : '.');
}
