import { z } from 'zod';
import { conversationId, requiredLine } from '../inputs.ts';
import { authedProcedure, router } from '../trpc.ts';

const id = z.uuid().transform((s) => s.toLowerCase());
/** A MIME type as browsers report it (`type/subtype`, parameters allowed). */
const contentType = z
  .string()
  .max(255)
  .regex(/^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*(\s*;.*)?$/, 'a MIME type such as image/png');

export const attachmentsRouter = router({
  /** Reserves quota for a file and says where to send its bytes (`upload`: a PUT to make as given). */
  create: authedProcedure
    .input(
      z.strictObject({
        conversationId,
        name: requiredLine(255).refine((s) => !/[\\/]/.test(s), 'a file name, without folders'),
        size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
        contentType,
      }),
    )
    .mutation(({ ctx, input }) => ctx.services.attachments.create(ctx.user.id, input)),

  /** Checks the uploaded bytes (size, type, image pixels) and makes the attachment usable in a message. */
  complete: authedProcedure
    .input(z.strictObject({ id }))
    .mutation(({ ctx, input }) => ctx.services.attachments.complete(ctx.user.id, input.id)),

  /** The attachment and short-lived links to its bytes (and thumbnail), for members of its conversation. */
  get: authedProcedure.input(z.strictObject({ id })).query(({ ctx, input }) => ctx.services.attachments.get(ctx.user.id, input.id)),
});
