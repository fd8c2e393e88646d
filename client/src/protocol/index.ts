/**
 * Hubbub's WebSocket protocol v1: frame types, close codes and error codes, with no runtime
 * dependency. `@hubbub/client/protocol` for code that needs only these (the hub imports them from
 * here); `@hubbub/client` re-exports them.
 */
export * from './types.ts';
export * from './codes.ts';
