import { DomainError } from '../errors.ts';

/**
 * A search query as people type it (Slack, Zulip): free text for full-text search (words,
 * "quoted phrases", -excluded, `or`), plus operators `from:<username>`, `in:<conversation id or
 * title>`, `before:<date>`, `after:<date>`, `has:mention`. An operator value with spaces is
 * quoted: `in:"Design team"`. Anything that is not one of these operators is text.
 */
export interface ParsedQuery {
  /** What websearch_to_tsquery gets; empty when the query is operators only. */
  text: string;
  /** Usernames (`me` for the caller), any of which sent the message. */
  from: string[];
  /** Conversation ids or titles, any of which holds the message. */
  in: string[];
  /** Sent strictly before this instant. */
  before?: Date;
  /** Sent at or after this instant. */
  after?: Date;
  /** The message mentions the caller. */
  hasMention: boolean;
}

const OPERATORS = new Set(['from', 'in', 'before', 'after', 'has']);
const MAX_VALUES = 10;
// A quoted phrase first (so `"a from:b"` stays text), then key:value, then any other run.
const TOKEN = /"[^"]*"?|([A-Za-z]+):("[^"]*"?|\S*)|\S+/g;
const DAY = /^\d{4}-\d{2}-\d{2}$/;
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;

const bad = (message: string): never => {
  throw new DomainError('BAD_REQUEST', message);
};

/**
 * A date is a UTC day (`2026-03-01`: before it means before that day starts, after it means
 * from that day's start on) or an ISO instant with its offset.
 */
function parseDate(op: string, value: string): Date {
  if (!DAY.test(value) && !INSTANT.test(value)) bad(`${op}: takes a date like 2026-03-01 or 2026-03-01T12:00:00Z`);
  const d = new Date(DAY.test(value) ? `${value}T00:00:00Z` : value);
  // Rejects 2026-02-30 too: Date rolls it over, so the day read back differs.
  if (Number.isNaN(d.getTime()) || (DAY.test(value) && d.toISOString().slice(0, 10) !== value)) bad(`${op}: ${value} is not a date`);
  return d;
}

const unquote = (v: string) => (v.startsWith('"') ? v.slice(1, v.endsWith('"') && v.length > 1 ? -1 : undefined) : v).trim();

export function parseQuery(query: string): ParsedQuery {
  const out: ParsedQuery = { text: '', from: [], in: [], hasMention: false };
  const text: string[] = [];
  for (const m of query.matchAll(TOKEN)) {
    const key = m[1]?.toLowerCase();
    if (!key || !OPERATORS.has(key)) {
      text.push(m[0]);
      continue;
    }
    const value = unquote(m[2] ?? '');
    if (!value) bad(`${key}: needs a value`);
    switch (key) {
      case 'from':
        out.from.push(value.replace(/^@/, ''));
        break;
      case 'in':
        out.in.push(value);
        break;
      case 'before': {
        const d = parseDate(key, value);
        if (!out.before || d < out.before) out.before = d;
        break;
      }
      case 'after': {
        const d = parseDate(key, value);
        if (!out.after || d > out.after) out.after = d;
        break;
      }
      case 'has':
        if (value.toLowerCase() !== 'mention') bad('has: takes `mention`');
        out.hasMention = true;
        break;
    }
  }
  if (out.from.length > MAX_VALUES || out.in.length > MAX_VALUES) bad(`at most ${MAX_VALUES} from: and ${MAX_VALUES} in: values`);
  out.text = text.join(' ').trim();
  const filtered = out.from.length || out.in.length || out.before || out.after || out.hasMention;
  if (!out.text && !filtered) bad('nothing to search for');
  return out;
}
