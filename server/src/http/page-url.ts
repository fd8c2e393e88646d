/**
 * Where a person opens the chat page of a hub listening on `host:port`. The page's sockets are
 * accepted only from ALLOWED_ORIGINS, so the address is the first allowed origin served by this
 * port when there is one (a LAN or public name the operator chose), else localhost.
 */
export function pageUrl(host: string, port: number, allowedOrigins: readonly string[]): { url: string; allowed: boolean } {
  const local = `http://${['0.0.0.0', '::', '127.0.0.1', 'localhost', ''].includes(host) ? 'localhost' : host.includes(':') ? `[${host}]` : host}:${port}`;
  const sameLocal = allowedOrigins.find((o) => o === local);
  if (sameLocal) return { url: sameLocal, allowed: true };
  const samePort = allowedOrigins.find((o) => {
    try {
      return new URL(o).port === String(port);
    } catch {
      return false;
    }
  });
  if (samePort) return { url: samePort, allowed: true };
  return { url: local, allowed: allowedOrigins.length === 0 };
}

/** The start-up line for a person at a terminal (the JSON log says the same for machines). */
export function startupLine(host: string, port: number, allowedOrigins: readonly string[]): string {
  const { url, allowed } = pageUrl(host, port, allowedOrigins);
  return allowed
    ? `Hubbub is running: open ${url} in a browser.\n`
    : `Hubbub is running on ${url}, but pages are accepted only from ${allowedOrigins.join(', ')}: open one of those, or add ${url} to ALLOWED_ORIGINS.\n`;
}
