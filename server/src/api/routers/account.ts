import { z } from 'zod';
import { authedProcedure, router } from '../trpc.ts';

export const accountRouter = router({
  export: authedProcedure.query(({ ctx }) => ctx.services.account.export(ctx.user.id)),
  delete: authedProcedure.input(z.strictObject({ password: z.string().min(1).max(256) })).mutation(async ({ ctx, input }) => {
    await ctx.services.account.delete(ctx.user, input.password, { ip: ctx.req.ip, userAgent: ctx.req.userAgent });
    return { ok: true as const };
  }),
});
