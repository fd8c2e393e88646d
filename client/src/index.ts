/**
 * `@hubbub/client`: the socket client (reconnect with backoff and jitter, resume, send retries
 * with the same cid, dedupe by seq, typed events, token refresh), a tRPC client typed by the
 * hub's `AppRouter`, and the protocol's types and codes, for browsers and Node.
 */
export { createClient, HubbubClient } from './hubbub-client.ts';
export type { HubbubClientOptions } from './hubbub-client.ts';
export { SocketClient } from './socket-client.ts';
export type { Ack, ConnectionState, RewoundEvent, SocketClientOptions, SocketEvents, TokenRequest } from './socket-types.ts';
export { HubbubError } from './errors.ts';
export type { HubbubErrorCode } from './errors.ts';
export type { WebSocketCtor, WebSocketLike } from './websocket.ts';
export { tokenExpiry } from './token.ts';
export { createApiClient, errorText } from './trpc-client.ts';
export { snippetParts } from './search.ts';
export type { SearchHit, SnippetPart } from './search.ts';
export { uploadFile } from './uploads.ts';
export type { UploadOptions } from './uploads.ts';
export type { ApiClient, ApiClientOptions, ApiInputs, ApiOutputs, AppRouter, Fetch } from './trpc-client.ts';
export * from './protocol/index.ts';
