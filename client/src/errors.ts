import type { ProtocolErrorCode } from './protocol/index.ts';

/**
 * Why a socket call failed: a protocol error code from the hub (`FORBIDDEN`, `RATE_LIMITED`, …),
 * or one of the client's own:
 * - `TIMEOUT`: no answer within the call's timeout (a send stays safe to retry with its cid);
 * - `CONNECTION_LOST`: the connection dropped after the request went out and before its answer,
 *   so whether the hub applied it is unknown (sends and reactions are resent instead: they are
 *   safe to repeat);
 * - `CLOSED`: the client was closed, or gave up (token refused, no new token);
 * - `NO_WEBSOCKET`: no WebSocket implementation in this runtime.
 */
export type HubbubErrorCode = ProtocolErrorCode | 'TIMEOUT' | 'CONNECTION_LOST' | 'CLOSED' | 'NO_WEBSOCKET';

export class HubbubError extends Error {
  override name = 'HubbubError';
  constructor(
    readonly code: HubbubErrorCode,
    message: string,
  ) {
    super(message);
  }
}
