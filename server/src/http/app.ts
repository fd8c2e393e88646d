import type { AnyTRPCRouter } from '@trpc/server';
import type { us_socket } from 'uWebSockets.js';
import { uws, type HttpRequest, type HttpResponse, type TemplatedApp, type us_listen_socket } from '../uws.ts';
import type { Logger } from '../observability/logger.ts';
import type { ApiServices } from '../api/services.ts';
import { trpcHandler } from './trpc-handler.ts';
import { corsHeaders, type HttpOptions } from './http-util.ts';
import { loadStaticFiles, sendStatic, type StaticFile } from './static-files.ts';
import { runChecks, type ReadinessCheck } from '../observability/readiness.ts';

export type { ReadinessCheck };

export interface HttpServerDeps {
  router: AnyTRPCRouter;
  services: ApiServices;
  logger: Logger;
  http: HttpOptions;
  checks: ReadinessCheck[];
  /** Extra routes (the WebSocket endpoint, webhooks) registered by the composition root. */
  extend?: (app: TemplatedApp) => void;
}

/** The chat client at `/`, built by `npm run build:web` (`npm start` builds it first). */
const webDist = new URL('../../../web/dist', import.meta.url).pathname;
const notBuilt =
  '<!doctype html><title>Hubbub</title><p>The web client is not built: run <code>npm run build:web</code> (npm start does it).</p>';

/**
 * The replica's public HTTP surface on one uWS app: /trpc, /health, /health/ready, /, and
 * extensions. /metrics is not here: it has a port of its own (observability/metrics-server.ts).
 */
export class HttpServer {
  readonly app: TemplatedApp;
  private listenSocket: us_listen_socket | null = null;
  draining = false;

  constructor(private readonly d: HttpServerDeps) {
    const app = (this.app = uws.App());
    const trpc = trpcHandler({ router: d.router, services: d.services, logger: d.logger, http: d.http });
    app.get('/trpc/*', trpc);
    app.post('/trpc/*', trpc);
    app.options('/*', (res, req) => {
      const cors = corsHeaders(req.getHeader('origin'), d.http.allowedOrigins);
      res.writeStatus('204 No Content');
      for (const [k, v] of Object.entries(cors)) res.writeHeader(k, v);
      res.end();
    });
    app.get('/health', (res) => json(res, '200 OK', { status: 'ok' }));
    app.get('/health/ready', (res) => {
      let aborted = false;
      res.onAborted(() => (aborted = true));
      void this.readiness().then(({ ok, checks }) => {
        if (!aborted) res.cork(() => json(res, ok ? '200 OK' : '503 Service Unavailable', { ready: ok, checks }));
      });
    });
    // Which page origins may open sockets (ALLOWED_ORIGINS): a browser never sees why an upgrade
    // was refused, so the page asks here and can say so instead of reconnecting for ever.
    app.get('/health/origin', (res, req) => {
      const origin = new URLSearchParams(req.getQuery() ?? '').get('origin') ?? req.getHeader('origin');
      if (!origin) return json(res, '400 Bad Request', { error: 'origin query parameter required' });
      json(res, '200 OK', { origin, allowed: d.http.allowedOrigins.has(origin) });
    });
    const files = loadStaticFiles(webDist);
    const index: StaticFile = files.get('/index.html') ?? { body: Buffer.from(notBuilt), type: 'text/html; charset=utf-8' };
    app.get('/', (res, req) => sendStatic(res, index, req.getHeader('accept-encoding'), false));
    app.head('/', (res, req) => sendStatic(res, index, req.getHeader('accept-encoding'), true));
    const asset = (head: boolean) => (res: HttpResponse, req: HttpRequest) => {
      const f = files.get(req.getUrl());
      if (f) sendStatic(res, f, req.getHeader('accept-encoding'), head);
      else if (head) res.writeStatus('404 Not Found').writeHeader('content-length', '0').endWithoutBody();
      else json(res, '404 Not Found', { error: 'not found' });
    };
    app.get('/assets/*', asset(false));
    app.head('/assets/*', asset(true));
    d.extend?.(app);
    app.any('/*', (res) => json(res, '404 Not Found', { error: 'not found' }));
  }

  async readiness() {
    const { ok, checks } = await runChecks(this.d.checks);
    return { ok: ok && !this.draining, checks: this.draining ? { draining: 'true', ...checks } : checks };
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (ls) => {
        if (!ls) return reject(new Error(`cannot listen on ${host}:${port}`));
        this.listenSocket = ls;
        resolve(uws.us_socket_local_port(ls as unknown as us_socket));
      });
    });
  }

  /** Stops accepting connections; open ones stay until closed. */
  stopListening() {
    if (this.listenSocket) uws.us_listen_socket_close(this.listenSocket);
    this.listenSocket = null;
  }
}

function json(res: HttpResponse, status: string, body: unknown) {
  res.writeStatus(status).writeHeader('content-type', 'application/json').end(JSON.stringify(body));
}
