/** The socket client's options, events and answers: the types an app names. */
import type { FrameOf, ServerFrame } from './protocol/index.ts';
import type { WebSocketCtor } from './websocket.ts';

export type ConnectionState = 'disconnected' | 'connecting' | 'connected';

export interface Ack {
  conv: string;
  cid: string;
  seq: number;
  id: string;
  ts: number;
}

/** What `getToken` is asked for. */
export interface TokenRequest {
  /**
   * True when the last token will not do: the hub closed the socket with 4001 (session ended or
   * token refused), the token's `exp` has passed, or the last connect never got `ready` (a
   * browser cannot see an upgrade's 401). Refresh it (e.g. `auth.refresh`), or return null if
   * the user is signed out.
   */
  refresh: boolean;
}

export interface SocketClientOptions {
  /** `ws://host:port/ws` (`wss://` behind TLS), or a function, called at every connect, that picks one. */
  url: string | (() => string);
  /**
   * The access token for the next connect; called before every one. Return null (or an empty
   * string) when there is none: the client stops and emits `disconnected` with `willReconnect`
   * false. If it throws, the client tries again after its backoff.
   */
  getToken: (req: TokenRequest) => string | null | Promise<string | null>;
  /** A WebSocket class; by default the runtime's, or the `ws` package in Node before 22. */
  WebSocket?: WebSocketCtor;
  /** Backoff: first delay and cap, in ms (200 and 10 000). */
  minDelayMs?: number;
  maxDelayMs?: number;
  /**
   * Give up on a send after this long without an ack (30 000; it stays safe to retry with the
   * same cid). 0: never give up; the send stays queued across reconnects until acked or refused.
   */
  sendTimeoutMs?: number;
  /** Default timeout of `edit`, `delete`, `react` and `ping`, in ms (10 000). */
  requestTimeoutMs?: number;
  /** Last seen seqs to resume from (e.g. persisted by the app). */
  initialSeqs?: Record<string, number>;
  /** The log epoch of each of those seqs (persisted beside them: `client.epochs`), so a restore since is noticed. */
  initialEpochs?: Record<string, number>;
}

/**
 * A conversation's log was rewound (restored from a backup) since this client's position in it:
 * drop what the app holds of it; its events follow again from seq 1 (or a `gap`, then the newest).
 */
export interface RewoundEvent extends FrameOf<'rewound'> {
  /** Your sends acked in the old epoch above `restoredSeq` (among the recent ones this client remembers): lost by the restore. */
  lost: Ack[];
}

/** Frames the client hands to the app as events of the same name. */
type Pushed = 'event' | 'read' | 'typing' | 'presence' | 'conversation' | 'limits' | 'gap' | 'error' | 'ready' | 'resumed';

export type SocketEvents = { [K in Pushed]: (frame: FrameOf<K>) => void } & {
  /** A conversation's history was rewound by a restore: see RewoundEvent. */
  rewound: (e: RewoundEvent) => void;
  /** Every frame from the hub, replies included (before its own event). */
  frame: (frame: ServerFrame) => void;
  /** A connect attempt starts (`attempt` 0 is the first after a success or `connect()`). */
  connecting: (e: { attempt: number }) => void;
  /** Open, resumed and live: sends and requests go out at once. */
  connected: (e: { user: FrameOf<'ready'>['user']; session: string }) => void;
  /** The socket closed; `willReconnect` says whether the client tries again. */
  disconnected: (e: { code: number; reason: string; willReconnect: boolean }) => void;
  /** The connection state changed. */
  state: (state: ConnectionState) => void;
};
