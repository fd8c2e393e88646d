import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { HttpResponse } from '../uws.ts';

export interface StaticFile {
  body: Buffer;
  type: string;
  /** The same bytes compressed at build time (`<name>.br`, `<name>.gz` beside the file), when present. */
  br?: Buffer;
  gzip?: Buffer;
}

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webmanifest': 'application/manifest+json',
};

/**
 * The built web client (web/dist), read into memory once: URL path → bytes and content type.
 * Requests are looked up in this table only, never joined onto a file path, so no URL can reach
 * a file outside the directory. An empty table when the client was not built.
 */
export function loadStaticFiles(dir: string): Map<string, StaticFile> {
  const out = new Map<string, StaticFile>();
  const compressed: [string, 'br' | 'gzip', Buffer][] = [];
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return; // not built (or not readable): the table stays empty and `/` says how to build it
    }
    for (const name of names) {
      const p = path.join(d, name);
      if (statSync(p).isDirectory()) {
        walk(p);
        continue;
      }
      const url = '/' + path.relative(dir, p).split(path.sep).join('/');
      const enc = name.endsWith('.br') ? 'br' : name.endsWith('.gz') ? 'gzip' : null;
      if (enc) compressed.push([url.slice(0, url.lastIndexOf('.')), enc, readFileSync(p)]);
      else if (types[path.extname(name)]) out.set(url, { body: readFileSync(p), type: types[path.extname(name)]! });
    }
  };
  walk(dir);
  for (const [url, enc, bytes] of compressed) {
    const f = out.get(url);
    if (f) f[enc] = bytes;
  }
  return out;
}

/** The best encoding the client accepts among those the file has: brotli, then gzip, else none. */
export function pickEncoding(f: StaticFile, acceptEncoding: string): 'br' | 'gzip' | null {
  const accepted = new Map<string, number>();
  for (const part of acceptEncoding.toLowerCase().split(',')) {
    const [name = '', ...params] = part.trim().split(';');
    const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)?.[1]).find(Boolean);
    accepted.set(name.trim(), q === undefined ? 1 : Number(q));
  }
  const ok = (name: string) => (accepted.get(name) ?? accepted.get('*') ?? 0) > 0;
  if (f.br && ok('br')) return 'br';
  if (f.gzip && ok('gzip')) return 'gzip';
  return null;
}

/**
 * Answers with a file (a HEAD: its headers and length, no body). Compressed when the client
 * accepts it; `vary: accept-encoding` either way, so a cache keeps the two apart.
 */
export function sendStatic(res: HttpResponse, f: StaticFile, acceptEncoding: string, head: boolean) {
  const enc = pickEncoding(f, acceptEncoding);
  const body = enc ? f[enc]! : f.body;
  res.cork(() => {
    res
      .writeStatus('200 OK')
      .writeHeader('content-type', f.type)
      .writeHeader('cache-control', 'no-cache')
      .writeHeader('x-content-type-options', 'nosniff');
    if (f.br || f.gzip) res.writeHeader('vary', 'accept-encoding');
    if (enc) res.writeHeader('content-encoding', enc);
    // This uWS build aborts on endWithoutBody(length): the length is written as a header instead.
    if (head) res.writeHeader('content-length', String(body.length)).endWithoutBody();
    else res.end(body);
  });
}
