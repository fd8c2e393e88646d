import net from 'node:net';
import WebSocket from 'ws';
import { RawClient } from './ws.ts';

/** One raw HTTP/1.1 exchange: what the server answered (status and headers), or how it hung up. */
export function rawHttp(
  port: number,
  request: string,
  timeoutMs = 5000,
): Promise<{ status: number; headers: Record<string, string>; raw: string } | { status: 0; closed: string; raw: string }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    const done = (closed: string) => {
      clearTimeout(t);
      s.destroy();
      const head = buf.split('\r\n\r\n')[0] ?? '';
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (!m) return resolve({ status: 0, closed, raw: buf });
      const headers: Record<string, string> = {};
      for (const line of head.split('\r\n').slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status: Number(m[1]), headers, raw: buf });
    };
    const t = setTimeout(() => done('timeout'), timeoutMs);
    s.on('data', (b) => {
      buf += b.toString('latin1');
      if (buf.includes('\r\n\r\n')) done('answered');
    });
    s.on('error', () => done('reset'));
    s.on('close', () => done('closed'));
    s.write(request);
  });
}

/** The upgrade request a browser sends, with overrides (a header set to null is left out). */
export function upgradeRequest(token: string, headers: Record<string, string | null> = {}, path = '/ws'): string {
  const all: Record<string, string | null> = {
    Host: '127.0.0.1',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version': '13',
    Authorization: `Bearer ${token}`,
    ...headers,
  };
  const lines = Object.entries(all)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k}: ${v}`);
  return `GET ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
}

/** The value of one gauge or counter from `/metrics?name=` on a metrics port (summed over its label sets). */
export async function metricValue(metricsPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics?name=${name}`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name)) sum += Number(line.split(' ').pop());
  return sum;
}

/** Waits until `cond` holds, checking after each turn of the server's work (bounded). */
export async function until(cond: () => Promise<boolean> | boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Opens a socket without waiting for `ready`: resolves with the client once open, or the HTTP status refused. */
export function openRaw(port: number, token: string, query = ''): Promise<RawClient> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws${query}`, { headers: { authorization: `Bearer ${token}` } });
  const c = new RawClient(ws);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(c));
    ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

/** Round trip of one ping on a socket, in ms. */
export async function pingMs(c: RawClient, timeoutMs = 10_000): Promise<number> {
  const t0 = performance.now();
  await c.request({ type: 'ping' }, timeoutMs);
  return performance.now() - t0;
}

/** Median of n ping round trips. */
export async function medianPing(c: RawClient, n = 15): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) xs.push(await pingMs(c));
  xs.sort((a, b) => a - b);
  return xs[Math.floor(n / 2)]!;
}

/** Median ping round trip over `durationMs`, one ping every `gapMs` (paced under the frame budget). */
export async function pacedMedianPing(c: RawClient, durationMs = 3000, gapMs = 60): Promise<number> {
  const xs: number[] = [];
  const end = performance.now() + durationMs;
  while (performance.now() < end) {
    xs.push(await pingMs(c));
    await new Promise((r) => setTimeout(r, gapMs));
  }
  xs.sort((a, b) => a - b);
  return xs[Math.floor(xs.length / 2)]!;
}
