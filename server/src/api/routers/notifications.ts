import { z } from 'zod';
import { HHMM, isTimeZone } from '../../notify/quiet-hours.ts';
import { authedProcedure, publicProcedure, router } from '../trpc.ts';

const url = z.string().max(2048);
const b64url = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[A-Za-z0-9_-]+={0,2}$/, 'must be base64url');
const quietHours = z.strictObject({
  start: z.string().regex(HHMM, 'must be a time as HH:MM'),
  end: z.string().regex(HHMM, 'must be a time as HH:MM'),
  timezone: z.string().max(64).refine(isTimeZone, 'is not a known IANA time zone'),
});
const level = z.enum(['all', 'mentions', 'none']);
const webhookId = z.strictObject({ id: z.uuid() });

export const notificationsRouter = router({
  vapidPublicKey: publicProcedure.query(({ ctx }) => ctx.services.notifications.vapidPublicKey()),

  registerPush: authedProcedure
    .input(z.strictObject({ endpoint: url, keys: z.strictObject({ p256dh: b64url(128), auth: b64url(64) }) }))
    .mutation(({ ctx, input }) => ctx.services.notifications.registerPush(ctx.user.id, input)),

  unregisterPush: authedProcedure
    .input(z.strictObject({ endpoint: url }))
    .mutation(({ ctx, input }) => ctx.services.notifications.unregisterPush(ctx.user.id, input.endpoint)),

  settings: authedProcedure.query(({ ctx }) => ctx.services.notifications.get(ctx.user.id)),

  updateSettings: authedProcedure
    .input(
      z.strictObject({
        push: z.boolean().optional(),
        email: z.boolean().optional(),
        previews: z.boolean().optional(),
        quietHours: quietHours.nullable().optional(),
        conversations: z
          .record(z.uuid(), level)
          .refine((r) => Object.keys(r).length <= 500, 'may name at most 500 conversations at once')
          .optional(),
      }),
    )
    .mutation(({ ctx, input }) => ctx.services.notifications.update(ctx.user.id, input)),

  webhooks: router({
    create: authedProcedure
      .input(z.strictObject({ url }))
      .mutation(({ ctx, input }) => ctx.services.notifications.createWebhook(ctx.user.id, input.url)),
    list: authedProcedure.query(({ ctx }) => ctx.services.notifications.listWebhooks(ctx.user.id)),
    delete: authedProcedure.input(webhookId).mutation(({ ctx, input }) => ctx.services.notifications.deleteWebhook(ctx.user.id, input.id)),
    rotateSecret: authedProcedure
      .input(webhookId)
      .mutation(({ ctx, input }) => ctx.services.notifications.rotateWebhookSecret(ctx.user.id, input.id)),
  }),

  deliveries: authedProcedure
    .input(z.strictObject({ limit: z.number().int().min(1).max(200).default(50) }).default({ limit: 50 }))
    .query(({ ctx, input }) => ctx.services.notifications.deliveries(ctx.user.id, input.limit)),
});
