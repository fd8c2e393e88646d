import { z } from 'zod';
import { authedProcedure, publicProcedure, router } from '../trpc.ts';
import { displayName, email, loginName, password, refreshToken, username } from '../inputs.ts';
import type { Context } from '../trpc.ts';

const meta = (ctx: Context) => ({ ip: ctx.req.ip, userAgent: ctx.req.userAgent });

export const authRouter = router({
  register: publicProcedure
    .input(z.strictObject({ email, username, password, displayName: displayName.optional() }))
    .mutation(async ({ ctx, input }) => {
      const { userId, ...pair } = await ctx.services.auth.register(input, meta(ctx));
      return { user: await ctx.services.profiles.me(userId), ...pair };
    }),

  login: publicProcedure
    .input(z.strictObject({ login: loginName, password: z.string().min(1).max(256) }))
    .mutation(async ({ ctx, input }) => {
      const { userId, ...pair } = await ctx.services.auth.login(input, meta(ctx));
      return { user: await ctx.services.profiles.me(userId), ...pair };
    }),

  refresh: publicProcedure.input(z.strictObject({ refreshToken })).mutation(async ({ ctx, input }) => {
    const { userId, ...pair } = await ctx.services.auth.refresh(input.refreshToken, meta(ctx));
    return { user: await ctx.services.profiles.me(userId), ...pair };
  }),

  logout: publicProcedure.input(z.strictObject({ refreshToken })).mutation(async ({ ctx, input }) => {
    await ctx.services.auth.logout(input.refreshToken, meta(ctx));
    return { ok: true as const };
  }),

  logoutAll: authedProcedure.mutation(async ({ ctx }) => {
    await ctx.services.auth.logoutAll(ctx.user, meta(ctx));
    return { ok: true as const };
  }),

  me: authedProcedure.query(({ ctx }) => ctx.services.profiles.me(ctx.user.id)),

  changePassword: authedProcedure
    .input(z.strictObject({ current: z.string().min(1).max(256), next: password }))
    .mutation(async ({ ctx, input }) => {
      await ctx.services.auth.changePassword(ctx.user, input, meta(ctx));
      return { ok: true as const };
    }),
});
