import { z } from 'zod';
import { authedProcedure, router } from '../trpc.ts';
import { conversationId, paragraph, userId } from '../inputs.ts';

/** Minor units: a positive integer, at most 10^12 (well inside JavaScript's exact integers). */
const amount = z.number().int().min(1).max(1_000_000_000_000);
const idempotencyKey = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');

export const paymentsRouter = router({
  balance: authedProcedure.query(({ ctx }) => ctx.services.payments.balance(ctx.user.id)),

  history: authedProcedure
    .input(
      z
        .strictObject({
          cursor: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
          limit: z.number().int().min(1).max(100).optional(),
        })
        .optional(),
    )
    .query(({ ctx, input }) => ctx.services.payments.history(ctx.user.id, input ?? {})),

  createTopUp: authedProcedure
    .input(z.strictObject({ amount, idempotencyKey: idempotencyKey.optional() }))
    .mutation(({ ctx, input }) => ctx.services.payments.createTopUp(ctx.user.id, input)),

  tip: authedProcedure
    .input(z.strictObject({ conversationId, toUserId: userId, amount, idempotencyKey, note: paragraph(200).optional() }))
    .mutation(({ ctx, input }) => ctx.services.payments.tip(ctx.user.id, input)),

  plans: authedProcedure.query(({ ctx }) => ctx.services.payments.plans()),

  subscribe: authedProcedure
    .input(z.strictObject({ planId: z.string().min(1).max(32), idempotencyKey }))
    .mutation(({ ctx, input }) => ctx.services.payments.subscribe(ctx.user.id, input)),

  cancel: authedProcedure.mutation(({ ctx }) => ctx.services.payments.cancel(ctx.user.id)),

  entitlements: authedProcedure.query(({ ctx }) => ctx.services.payments.entitlements(ctx.user.id)),
});
