import net from 'node:net';

/**
 * A loopback TCP proxy with a switchable upstream: a browser page keeps one origin while the
 * test drains its hub and starts another on a new port. While the upstream refuses, each new
 * connection is dropped, as a network failure would.
 */
export interface TcpProxy {
  port: number;
  target: number;
  /** Cuts every open connection (as a network failure would); new ones go to `target`. */
  dropAll(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: number): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  const proxy: TcpProxy = { port: 0, target, dropAll: () => sockets.forEach((s) => s.destroy()), close: async () => {} };
  const server = net.createServer((client) => {
    sockets.add(client);
    const upstream = net.connect(proxy.target, '127.0.0.1');
    sockets.add(upstream);
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  proxy.port = (server.address() as net.AddressInfo).port;
  proxy.close = () =>
    new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  return proxy;
}
