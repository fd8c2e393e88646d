import { router } from './trpc.ts';
import { accountRouter } from './routers/account.ts';
import { authRouter } from './routers/auth.ts';
import { conversationsRouter } from './routers/conversations.ts';
import { profilesRouter } from './routers/profiles.ts';
import { paymentsRouter } from './routers/payments.ts';
import { notificationsRouter } from './routers/notifications.ts';
import { messagesRouter } from './routers/messages.ts';
import { attachmentsRouter } from './routers/attachments.ts';

export const appRouter = router({
  auth: authRouter,
  profiles: profilesRouter,
  conversations: conversationsRouter,
  messages: messagesRouter,
  account: accountRouter,
  payments: paymentsRouter,
  notifications: notificationsRouter,
  attachments: attachmentsRouter,
});

/** Typed web clients import this type: `createTRPCClient<AppRouter>(…)`. */
export type AppRouter = typeof appRouter;
