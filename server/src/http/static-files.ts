import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

export interface StaticFile {
  body: Buffer;
  type: string;
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
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const name of names) {
      const p = path.join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else {
        const type = types[path.extname(name)];
        if (type) out.set('/' + path.relative(dir, p).split(path.sep).join('/'), { body: readFileSync(p), type });
      }
    }
  };
  walk(dir);
  return out;
}
