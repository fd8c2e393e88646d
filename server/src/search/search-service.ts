import { and, eq, inArray, isNull, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '../db/database.ts';
import { conversations, members, users } from '../../../db/schema/index.ts';
import { DomainError } from '../errors.ts';
import type { MessageSearch, SearchHit, SearchOrder, SearchPosition } from './message-search.ts';
import { parseQuery } from './query-syntax.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The opaque cursor: the keyset position and the order it belongs to. */
const cursorSchema = z.strictObject({
  o: z.enum(['relevance', 'recent']),
  k: z.number().finite(),
  c: z.string().regex(UUID),
  s: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
});

export function encodeCursor(order: SearchOrder, p: SearchPosition): string {
  return Buffer.from(JSON.stringify({ o: order, k: p.key, c: p.conversationId, s: p.seq })).toString('base64url');
}

function decodeCursor(order: SearchOrder, cursor: string): SearchPosition {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new DomainError('BAD_REQUEST', 'invalid cursor');
  }
  const p = cursorSchema.safeParse(raw);
  if (!p.success || p.data.o !== order) throw new DomainError('BAD_REQUEST', 'invalid cursor');
  return { key: p.data.k, conversationId: p.data.c, seq: p.data.s };
}

export interface SearchInput {
  query: string;
  conversationId?: string;
  order: SearchOrder;
  cursor?: string;
  limit: number;
}

/**
 * `messages.search`: parses the query, turns `from:` usernames and `in:` titles into ids (only
 * among the caller's conversations: a title elsewhere matches nothing), applies the caller's
 * plan history depth, and asks the search port.
 */
export class SearchService {
  constructor(
    private readonly d: {
      db: Db;
      search: MessageSearch;
      /** The caller's plan history depth; unlimited without it. */
      historyDepthOf?: (userId: string) => Promise<number>;
    },
  ) {}

  async search(caller: string, input: SearchInput): Promise<{ hits: SearchHit[]; nextCursor: string | null }> {
    const q = parseQuery(input.query);
    const cursor = input.cursor ? decodeCursor(input.order, input.cursor) : undefined;
    const [from, inConvs, historyDepth] = await Promise.all([
      this.senders(caller, q.from),
      this.conversationsNamed(caller, q.in),
      this.d.historyDepthOf ? this.d.historyDepthOf(caller) : Number.MAX_SAFE_INTEGER,
    ]);
    let within = inConvs;
    if (input.conversationId) within = within ? within.filter((c) => c === input.conversationId) : [input.conversationId];
    // A name that matches nothing: no sender or conversation can match, so no hits.
    if ((q.from.length && !from.length) || (within && !within.length)) return { hits: [], nextCursor: null };
    const page = await this.d.search.search({
      userId: caller,
      text: q.text,
      from,
      in: within ?? [],
      before: q.before,
      after: q.after,
      hasMention: q.hasMention,
      historyDepth,
      order: input.order,
      cursor,
      limit: input.limit,
    });
    return { hits: page.hits, nextCursor: page.next ? encodeCursor(input.order, page.next) : null };
  }

  private async senders(caller: string, names: string[]): Promise<string[]> {
    if (!names.length) return [];
    const ids = new Set<string>();
    const others: string[] = [];
    for (const n of names) {
      if (n.toLowerCase() === 'me') ids.add(caller);
      else others.push(n.toLowerCase());
    }
    if (others.length) {
      const rows = await this.d.db
        .select({ id: users.id })
        .from(users)
        .where(and(inArray(sql`lower(${users.username})`, others), isNull(users.deletedAt)));
      for (const r of rows) ids.add(r.id);
    }
    return [...ids];
  }

  /** Ids as given; titles (case-insensitive, whole) among the caller's conversations. Null: no `in:`. */
  private async conversationsNamed(caller: string, names: string[]): Promise<string[] | null> {
    if (!names.length) return null;
    const ids = new Set(names.filter((n) => UUID.test(n)).map((n) => n.toLowerCase()));
    const titles = names.filter((n) => !UUID.test(n)).map((n) => n.toLowerCase());
    if (titles.length) {
      const rows = await this.d.db
        .select({ id: conversations.id })
        .from(members)
        .innerJoin(conversations, eq(conversations.id, members.conversationId))
        .where(and(eq(members.userId, caller), inArray(sql`lower(${conversations.title})`, titles)));
      for (const r of rows) ids.add(r.id);
    }
    return [...ids];
  }
}
