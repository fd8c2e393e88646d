/**
 * Error codes carried by `error` frames: the hub's domain errors, and `INTERNAL` for its own
 * failures (a send that got `INTERNAL` or `RATE_LIMITED` is safe to retry with the same cid).
 */
export type ProtocolErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'RATE_LIMITED'
  | 'PAYLOAD_TOO_LARGE'
  /** The request is valid but the state refuses it (payments not configured, insufficient balance, debt). */
  | 'PRECONDITION_FAILED'
  | 'INTERNAL';

/**
 * Close codes. 1xxx are WebSocket standard codes; 4xxx are Hubbub's. `reconnect` tells a client
 * whether to reconnect (and resume) or give up with that token.
 */
export const CloseCodes = {
  /** Normal close by either side. */
  NORMAL: { code: 1000, reconnect: false },
  /** A frame over the size limit. */
  FRAME_TOO_LARGE: { code: 1009, reconnect: true },
  /** Server draining or restarting: reconnect after a jittered delay, to any replica. */
  SERVER_RESTART: { code: 1012, reconnect: true },
  /** Token invalid, expired, or its session was revoked: do not reconnect with the same token. */
  UNAUTHORIZED: { code: 4001, reconnect: false },
  /** Too many frames for the rate limit, or too many connections for this user. */
  RATE_LIMITED: { code: 4008, reconnect: true },
  /** Send buffer over its limit (slow consumer): reconnect and resume. */
  TOO_SLOW: { code: 4009, reconnect: true },
  /** No pong within the heartbeat timeout. */
  HEARTBEAT_TIMEOUT: { code: 4010, reconnect: true },
} as const;

export type CloseReason = keyof typeof CloseCodes;
