import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from './logger.ts';

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/**
 * `/metrics` (and `/health`) on a port of its own, for Prometheus inside the cluster: the public
 * port never serves them, so nobody outside can make a process run its collectors. A plain
 * node:http server: a few requests a minute, beside the hub's uWS app on the same event loop.
 *
 * `/metrics?name=<metric>` serves that one metric only, without running the default collectors
 * (process_open_fds lists /proc/self/fd: with 10k sockets that is most of a scrape), for tools
 * that poll one gauge often, such as the bench's connection count.
 */
export function startMetricsServer(o: {
  registry: Registry;
  host: string;
  port: number;
  setting: string;
  logger: Logger;
  /** What `/health` answers: by default 200 while the process runs; the workers check their dependencies. */
  health?: () => Promise<{ ok: boolean; body: unknown }>;
}): Promise<MetricsServer> {
  const { registry } = o;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://metrics');
    if (req.method !== 'GET') return void res.writeHead(405, { allow: 'GET' }).end();
    if (url.pathname === '/health') {
      if (!o.health) return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return void o.health().then(
        ({ ok, body }) => res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(body)),
        (err: Error) => res.writeHead(503, { 'content-type': 'text/plain' }).end(`health check failed: ${err.message}`),
      );
    }
    if (url.pathname !== '/metrics') return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    const name = url.searchParams.get('name');
    if (name && !registry.getSingleMetric(name)) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('no such metric');
    (name ? registry.getSingleMetricAsString(name) : registry.metrics()).then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`collect failed: ${err.message}`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`cannot serve metrics on ${o.host}:${o.port} (${o.setting}): ${err.message}`)));
    server.listen(o.port, o.host, () => {
      server.on('error', (err) => o.logger.warn({ err: err.message }, 'metrics server error'));
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}
