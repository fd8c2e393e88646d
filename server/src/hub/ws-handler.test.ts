import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { createLogger } from '../observability/logger.ts';
import { createMetrics } from '../observability/metrics.ts';
import { uws, type us_listen_socket, type WebSocket as UwsSocket } from '../uws.ts';
import type { Hub, UserWatch } from './hub.ts';
import type { Authenticator, SocketLogin, SocketUser } from './ports.ts';
import { wsBehavior } from './ws-handler.ts';

const USER = '00000000-0000-4000-8000-000000000001';

/**
 * The upgrade over real uWS on loopback, with an authenticator whose login waits until another
 * connection's HTTP request lets it go: that request's handler resolves the login, so the
 * upgrade's promise continuation runs in the microtask drain of uWS's dispatch of that other
 * connection. The hub is a stand-in that answers `ready` at open (the hub itself is tested
 * elsewhere); what is under test is the handshake.
 */
test('4 an upgrade whose login resolves inside another connection’s request still opens and gets ready; that request is answered', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let loginAsked!: () => void;
  const asked = new Promise<void>((r) => (loginAsked = r));
  const auth: Authenticator = {
    verify: async (token: string): Promise<SocketUser> => ({ id: USER, sessionId: token }),
    login: async (user: SocketUser): Promise<SocketLogin> => {
      loginAsked();
      await gate;
      return { user, info: { id: user.id, username: 'u', displayName: 'U' }, convs: [], contacts: [] };
    },
  };
  const watch = { queue: [] } as unknown as UserWatch;
  const hub = {
    watchUser: async () => watch,
    unwatch: () => {},
    attach: (ws: UwsSocket<unknown>) => {
      ws.send(JSON.stringify({ type: 'ready' }));
      return { closed: false };
    },
    closed: () => {},
  } as unknown as Hub;
  const app = uws.App();
  app.ws(
    '/ws',
    wsBehavior({
      hub,
      auth,
      logger: createLogger({ level: 'silent', replicaId: 'test' }),
      metrics: createMetrics(),
      allowedOrigins: new Set(),
      maxFrameBytes: 65_536,
      idleTimeoutS: 30,
      maxBackpressure: 1 << 20,
      maxUrlBytes: 8192,
      maxHeaderBytes: 16_384,
    }),
  );
  // Another connection's request, whose handler is what lets the login finish.
  app.get('/release', (res) => {
    release();
    res.end('released');
  });
  app.get('/after', (res) => {
    res.end('after');
  });
  const listen = await new Promise<us_listen_socket>((resolve, reject) =>
    app.listen('127.0.0.1', 0, (t) => (t ? resolve(t) : reject(new Error('listen failed')))),
  );
  const port = uws.us_socket_local_port(listen);
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { authorization: 'Bearer token-1' } });
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    const ready = new Promise<string>((resolve, reject) => {
      ws.once('message', (m) => resolve(String(m)));
      ws.once('error', reject);
      void closed.then((code) => reject(new Error(`closed ${code} before ready`)));
    });
    await asked;
    const released = await fetch(`http://127.0.0.1:${port}/release`, { signal: AbortSignal.timeout(5000) });
    assert.equal(await released.text(), 'released', 'the request that released the login is answered');
    assert.deepEqual(JSON.parse(await ready), { type: 'ready' });
    const after = await fetch(`http://127.0.0.1:${port}/after`, { signal: AbortSignal.timeout(5000) });
    assert.equal(await after.text(), 'after', 'the next request on a fresh connection is answered');
    ws.close();
    assert.equal(await closed, 1005);
  } finally {
    uws.us_listen_socket_close(listen);
  }
});
