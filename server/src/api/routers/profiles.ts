import { z } from 'zod';
import { authedProcedure, router } from '../trpc.ts';
import { displayName, httpsUrl, line, paragraph, requiredLine, timezone, userId, username } from '../inputs.ts';

export const profilesRouter = router({
  get: authedProcedure
    .input(z.union([z.strictObject({ userId }), z.strictObject({ username })]))
    .query(({ ctx, input }) => ctx.services.profiles.get(input)),

  update: authedProcedure
    .input(
      z.strictObject({
        displayName: displayName.optional(),
        bio: paragraph(500).optional(),
        avatarUrl: httpsUrl.nullable().optional(),
        statusText: line(140).optional(),
        timezone: timezone.optional(),
      }),
    )
    .mutation(({ ctx, input }) => ctx.services.profiles.update(ctx.user.id, input)),

  search: authedProcedure
    .input(z.strictObject({ query: requiredLine(64), limit: z.number().int().min(1).max(50).default(20) }))
    .query(({ ctx, input }) => ctx.services.profiles.search(ctx.user.id, input.query, input.limit)),

  block: authedProcedure.input(z.strictObject({ userId })).mutation(async ({ ctx, input }) => {
    await ctx.services.profiles.block(ctx.user.id, input.userId);
    return { ok: true as const };
  }),

  unblock: authedProcedure.input(z.strictObject({ userId })).mutation(async ({ ctx, input }) => {
    await ctx.services.profiles.unblock(ctx.user.id, input.userId);
    return { ok: true as const };
  }),

  blocked: authedProcedure.query(({ ctx }) => ctx.services.profiles.blocked(ctx.user.id)),
});
