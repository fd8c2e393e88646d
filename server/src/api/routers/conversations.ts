import { z } from 'zod';
import { authedProcedure, router } from '../trpc.ts';
import { conversationId, paragraph, requiredLine, userId } from '../inputs.ts';

const seq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const title = requiredLine(100);

export const conversationsRouter = router({
  createDirect: authedProcedure
    .input(z.strictObject({ userId }))
    .mutation(({ ctx, input }) => ctx.services.conversations.createDirect(ctx.user.id, input.userId)),

  createGroup: authedProcedure
    .input(z.strictObject({ title, memberIds: z.array(userId).max(1000) }))
    .mutation(({ ctx, input }) => ctx.services.conversations.createGroup(ctx.user.id, input.title, input.memberIds)),

  addMembers: authedProcedure
    .input(z.strictObject({ conversationId, userIds: z.array(userId).min(1).max(1000) }))
    .mutation(({ ctx, input }) => ctx.services.conversations.addMembers(ctx.user.id, input.conversationId, input.userIds)),

  removeMember: authedProcedure
    .input(z.strictObject({ conversationId, userId }))
    .mutation(({ ctx, input }) => ctx.services.conversations.removeMember(ctx.user.id, input.conversationId, input.userId)),

  leave: authedProcedure
    .input(z.strictObject({ conversationId }))
    .mutation(({ ctx, input }) => ctx.services.conversations.leave(ctx.user.id, input.conversationId)),

  update: authedProcedure
    .input(z.strictObject({ conversationId, title: title.optional(), topic: paragraph(500).optional() }))
    .mutation(({ ctx, input }) =>
      ctx.services.conversations.update(ctx.user.id, input.conversationId, { title: input.title, topic: input.topic }),
    ),

  setRole: authedProcedure
    .input(z.strictObject({ conversationId, userId, role: z.enum(['admin', 'member']) }))
    .mutation(({ ctx, input }) => ctx.services.conversations.setRole(ctx.user.id, input.conversationId, input.userId, input.role)),

  list: authedProcedure.query(({ ctx }) => ctx.services.conversations.list(ctx.user.id)),

  get: authedProcedure
    .input(z.strictObject({ conversationId }))
    .query(({ ctx, input }) => ctx.services.conversations.get(ctx.user.id, input.conversationId)),

  history: authedProcedure
    .input(
      z
        .strictObject({
          conversationId,
          beforeSeq: seq.optional(),
          afterSeq: seq.optional(),
          /** Opens the log at this event (a search hit): events before it, it, and after it. */
          aroundSeq: seq.min(1).optional(),
          limit: z.number().int().min(1).max(100).default(50),
        })
        .refine((i) => i.aroundSeq == null || (i.beforeSeq == null && i.afterSeq == null), {
          message: 'aroundSeq goes without beforeSeq and afterSeq',
          path: ['aroundSeq'],
        }),
    )
    .query(({ ctx, input }) => {
      // Charged by the rows asked for, before the read.
      ctx.services.budgets.historyRows.spend(ctx.user.id, input.limit, 'too many history rows, slow down');
      return ctx.services.conversations.history(ctx.user.id, input.conversationId, {
        beforeSeq: input.beforeSeq,
        afterSeq: input.afterSeq,
        aroundSeq: input.aroundSeq,
        limit: input.limit,
      });
    }),

  readCursors: authedProcedure
    .input(z.strictObject({ conversationId }))
    .query(({ ctx, input }) => ctx.services.conversations.memberCursors(ctx.user.id, input.conversationId)),

  markRead: authedProcedure
    .input(z.strictObject({ conversationId, seq }))
    .mutation(({ ctx, input }) => ctx.services.conversations.markReadChecked(ctx.user.id, input.conversationId, input.seq)),

  mute: authedProcedure
    .input(z.strictObject({ conversationId, until: z.iso.datetime({ offset: true }).nullable().optional() }))
    .mutation(({ ctx, input }) =>
      ctx.services.conversations.mute(
        ctx.user.id,
        input.conversationId,
        input.until === undefined ? undefined : input.until === null ? null : new Date(input.until),
      ),
    ),
});
