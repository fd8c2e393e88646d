import { z } from 'zod';
import { authedProcedure, router } from '../trpc.ts';
import { conversationId, line } from '../inputs.ts';

export const messagesRouter = router({
  /** Full-text search over what the caller may read; the query syntax is in search/query-syntax.ts. */
  search: authedProcedure
    .input(
      z.strictObject({
        query: line(500),
        conversationId: conversationId.optional(),
        order: z.enum(['relevance', 'recent']).default('relevance'),
        cursor: z.string().max(500).optional(),
        limit: z.number().int().min(1).max(50).default(20),
      }),
    )
    .query(({ ctx, input }) => ctx.services.search.search(ctx.user.id, input)),
});
