import { TRPCError, initTRPC } from '@trpc/server';
import type { TRPC_ERROR_CODE_KEY } from '@trpc/server';
import { ZodError } from 'zod';
import { DomainError, type DomainErrorCode } from '../errors.ts';
import type { ApiServices } from './services.ts';
import type { Logger } from '../observability/logger.ts';

export interface RequestInfo {
  ip: string;
  userAgent?: string;
  requestId: string;
  authorization?: string;
}

export interface Context {
  services: ApiServices;
  req: RequestInfo;
  log: Logger;
}

const trpcCodeOf: Record<DomainErrorCode, TRPC_ERROR_CODE_KEY> = {
  BAD_REQUEST: 'BAD_REQUEST',
  UNAUTHORIZED: 'UNAUTHORIZED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  RATE_LIMITED: 'TOO_MANY_REQUESTS',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  PRECONDITION_FAILED: 'PRECONDITION_FAILED',
};

const t = initTRPC.context<Context>().create({
  errorFormatter({ shape, error }) {
    const cause = error.cause;
    return {
      ...shape,
      data: {
        ...shape.data,
        // The stack is never sent; zod issues are, so clients can show which field was wrong.
        stack: undefined,
        zodIssues: cause instanceof ZodError ? cause.issues : undefined,
        retryAfterMs: cause instanceof DomainError ? cause.retryAfterMs : undefined,
      },
    };
  },
});

/**
 * Maps domain errors to TRPCErrors (the one place that does), counts calls and their latency,
 * and logs unexpected failures without leaking them to the client.
 */
const observed = t.middleware(async ({ ctx, path, next }) => {
  const started = performance.now();
  const result = await next();
  let code = 'OK';
  if (!result.ok) {
    const err = result.error;
    if (err.cause instanceof DomainError) {
      const mapped = new TRPCError({ code: trpcCodeOf[err.cause.code], message: err.cause.message, cause: err.cause });
      (result as { error: TRPCError }).error = mapped;
      code = mapped.code;
    } else {
      code = err.code;
      if (err.code === 'INTERNAL_SERVER_ERROR') {
        ctx.log.error({ err: err.cause ?? err, path }, 'procedure failed');
        (result as { error: TRPCError }).error = new TRPCError({
          code: 'INTERNAL_SERVER_ERROR',
          message: 'internal error',
        });
      }
    }
  }
  const m = ctx.services.metrics;
  m.trpcCalls.inc({ procedure: path, code });
  m.trpcDuration.observe({ procedure: path }, (performance.now() - started) / 1000);
  return result;
});

/** Each call (batched or not) costs its caller one token: per user once authenticated, else per IP. */
function charge(ctx: Context, kind: 'apiCalls' | 'anonCalls', key: string) {
  ctx.services.budgets[kind].spend(key, 1, 'too many calls, slow down');
}

export const router = t.router;
const observedProcedure = t.procedure.use(observed);
export const publicProcedure = observedProcedure.use(({ ctx, next }) => {
  charge(ctx, 'anonCalls', `ip:${ctx.req.ip}`);
  return next();
});

/** Narrows ctx.user: a valid access token whose session is live. */
export const authedProcedure = observedProcedure.use(async ({ ctx, next }) => {
  const header = ctx.req.authorization;
  const m = header ? /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(header) : null;
  if (!m) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'missing bearer token' });
  const user = await ctx.services.auth.authenticate(m[1]!);
  charge(ctx, 'apiCalls', user.id);
  return next({ ctx: { user } });
});
