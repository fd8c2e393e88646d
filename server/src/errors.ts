/**
 * Expected failures of the domain services. One vocabulary, mapped once to TRPCError codes
 * (api/trpc.ts) and once to protocol error frames (`ProtocolErrorCode` in `@hubbub/client/protocol`,
 * which every code here must be part of: the hub passes them to `error` frames as they are).
 */
export type DomainErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'RATE_LIMITED'
  | 'PAYLOAD_TOO_LARGE'
  /** The request is valid but the state refuses it (payments not configured, insufficient balance, debt). */
  | 'PRECONDITION_FAILED';

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

/** What both drivers' errors carry: a SQLSTATE in `code`, and the error they wrap in `cause`. */
type Coded = { code?: unknown; cause?: unknown };

/** The PostgreSQL SQLSTATE the error (or one it wraps) carries, from either driver. */
function sqlState(err: unknown): string | undefined {
  const seen = new Set<unknown>();
  let e = err as Coded | undefined;
  while (e && !seen.has(e)) {
    seen.add(e);
    if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return e.code;
    e = e.cause as Coded | undefined;
  }
  return undefined;
}
const hasSqlState = (err: unknown, code: string) => sqlState(err) === code;

/**
 * True when PostgreSQL refused a statement over its data (SQLSTATE classes 22 data exception,
 * 23 integrity violation, 54 program limit): it was rolled back, and the same data fails again.
 */
export const isDataError = (err: unknown) => /^(22|23|54)/.test(sqlState(err) ?? '');

/** True for PostgreSQL unique-violation errors from either driver. */
export const isUniqueViolation = (err: unknown) => hasSqlState(err, '23505');

/** True for PostgreSQL deadlock errors (the statement was rolled back and may be retried). */
export const isDeadlock = (err: unknown) => hasSqlState(err, '40P01');

/** True for serialization failures and deadlocks, which a transaction retry resolves. */
export function isRetryableTxError(err: unknown): boolean {
  let e = err as Coded | undefined;
  for (let i = 0; e && i < 5; i++, e = e.cause as Coded | undefined) if (e.code === '40001' || e.code === '40P01') return true;
  return false;
}
