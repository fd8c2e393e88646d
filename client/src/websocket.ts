import { HubbubError } from './errors.ts';

/**
 * A handler slot that both the browser's WebSocket (DOM events, a `this` parameter) and the `ws`
 * package's (its own event classes) satisfy without a cast: declared as a method, so TypeScript
 * compares its parameter bivariantly, and the client only reads the fields named here.
 */
type Handler<E> = { bivariant(ev: E): unknown }['bivariant'] | null;

/** The WebSocket surface the client uses (the browser's, Node 22's, or the `ws` package's). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<object>;
  onmessage: Handler<{ data: unknown }>;
  onclose: Handler<{ code: number; reason: string }>;
  onerror: Handler<object>;
}
export type WebSocketCtor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/**
 * The WebSocket to use when none is passed: the runtime's (browsers, Deno, Bun, Node 22 and
 * later), else the `ws` package (Node 18 and 20), loaded only then so browser bundles never
 * include it. The specifier is a variable so bundlers leave the import alone.
 */
export async function defaultWebSocket(): Promise<WebSocketCtor> {
  const own = (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
  if (own) return own;
  const name = 'ws';
  try {
    const m = (await import(/* @vite-ignore */ /* webpackIgnore: true */ name)) as { default?: WebSocketCtor; WebSocket?: WebSocketCtor };
    const ctor = m.default ?? m.WebSocket;
    if (ctor) return ctor;
  } catch (err) {
    throw new HubbubError(
      'NO_WEBSOCKET',
      `this runtime has no WebSocket and the ws package did not load (${(err as Error).message}): install ws, or pass the WebSocket option`,
    );
  }
  throw new HubbubError('NO_WEBSOCKET', 'this runtime has no WebSocket: install the ws package, or pass the WebSocket option');
}
