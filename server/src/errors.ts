/**
 * Expected failures of the domain services. One vocabulary, mapped once to TRPCError codes
 * (api/trpc.ts) and once to protocol error frames (protocol/codes.ts).
 */
export type DomainErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'RATE_LIMITED'
  | 'PAYLOAD_TOO_LARGE';

export class DomainError extends Error {
  override name = 'DomainError';
  constructor(
    readonly code: DomainErrorCode,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export const fail = (code: DomainErrorCode, message: string, retryAfterMs?: number): never => {
  throw new DomainError(code, message, retryAfterMs);
};

/** True for PostgreSQL unique-violation errors from either driver. */
export function isUniqueViolation(err: unknown): boolean {
  const seen = new Set<unknown>();
  let e: any = err;
  while (e && !seen.has(e)) {
    seen.add(e);
    if (e.code === '23505') return true;
    e = e.cause;
  }
  return false;
}

/** True for serialization failures and deadlocks, which a transaction retry resolves. */
export function isRetryableTxError(err: unknown): boolean {
  let e: any = err;
  for (let i = 0; e && i < 5; i++, e = e.cause) if (e.code === '40001' || e.code === '40P01') return true;
  return false;
}
