// Runs after `npm install` / `npm ci` (the root package's postinstall, and in the Dockerfile).
// postgres 3.4.9 (the `postgres` driver) defers small writes to a setImmediate; when the
// connection closes before it runs, `nextWrite` calls `socket.write` on null and throws outside
// any promise, which ends the process (a hub whose PostgreSQL goes away crashes instead of
// failing its queries). The queries were already rejected with CONNECTION_CLOSED when the socket
// was dropped, so the buffered write is moot: the guard drops it. Upstream: porsager/postgres
// issues 1154 and 1208, pull requests 1168, 1176 and 1209 (open). Idempotent; fails loudly when
// the driver's code no longer has the line, so a new version is looked at, not silently unpatched.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..', 'node_modules', 'postgres');
const line = '    const x = socket.write(chunk, fn)';
const guard = '    if (!socket) return (chunk = nextWriteTimer = null, false) // hubbub: closed before the deferred write\n';
let patched = 0;
for (const rel of ['src/connection.js', 'cjs/src/connection.js', 'cf/src/connection.js']) {
  const file = path.join(root, rel);
  if (!existsSync(file)) continue;
  const text = readFileSync(file, 'utf8');
  if (text.includes(guard)) {
    patched++;
    continue;
  }
  if (!text.includes(line)) {
    console.error(`patch-postgres: ${file} has no "${line.trim()}": check the nextWrite guard against this driver version`);
    process.exit(1);
  }
  writeFileSync(file, text.replace(line, guard + line));
  patched++;
}
if (!existsSync(root)) process.exit(0); // installed without the driver (the client workspace alone)
if (!patched) {
  console.error('patch-postgres: no connection.js found in the postgres driver');
  process.exit(1);
}
