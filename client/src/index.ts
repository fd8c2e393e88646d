/**
 * `@hubbub/client`: the socket client (reconnect with backoff and jitter, resume, send retries
 * with the same cid, dedupe by seq), a tRPC client typed by the hub's `AppRouter`, and the
 * protocol types, for browsers and Node.
 */
export { SocketClient, HubbubError } from './socket-client.ts';
export type { Ack, SocketClientOptions, WebSocketCtor, WebSocketLike } from './socket-client.ts';
export { createApiClient, errorText } from './trpc-client.ts';
export type { ApiClient, ApiClientOptions, AppRouter } from './trpc-client.ts';
export * from './protocol/index.ts';
