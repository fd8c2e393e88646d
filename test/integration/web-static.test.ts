import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { buildWeb } from '../../scripts/build-web.ts';
import type { Replica } from '../../server/src/replica.ts';
import { freePort } from '../helpers/ports.ts';
import { startTestReplica, testEnv, type TestEnv } from '../helpers/server.ts';

const root = path.resolve(import.meta.dirname, '..', '..');

/** A request with node:http, which (unlike fetch) neither asks for nor undoes compression, and sends HEAD as HEAD. */
function request(
  url: string,
  method: 'GET' | 'HEAD',
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A raw HTTP/1.1 GET, so the path reaches the hub exactly as written (fetch would normalise `..`). */
function rawGet(port: number, target: string): Promise<{ status: number; head: string; body: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    let data = '';
    s.on('data', (b) => (data += b));
    s.on('error', reject);
    s.on('close', () => {
      const [head = '', ...rest] = data.split('\r\n\r\n');
      resolve({ status: Number(head.split(' ')[1]), head: head.toLowerCase(), body: rest.join('\r\n\r\n') });
    });
  });
}

describe('the web client as static files', () => {
  let env: TestEnv;
  let replica: Replica;
  before(async () => {
    await buildWeb();
    env = await testEnv('pglite');
    replica = await startTestReplica(env.env, { ALLOWED_ORIGINS: 'https://chat.example.com' });
  });
  after(async () => {
    await replica?.stop();
    await env?.cleanup();
  });

  test('/ is the page, /assets/* the bundle and CSS, each with its content type', async () => {
    const base = `http://127.0.0.1:${replica.port}`;
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.match(await page.text(), /<script type="module" src="\/assets\/app\.js">/);
    const js = await fetch(`${base}/assets/app.js`);
    assert.equal(js.status, 200);
    assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(js.headers.get('x-content-type-options'), 'nosniff');
    assert.ok((await js.text()).length > 10_000);
    const css = await fetch(`${base}/assets/styles.css`);
    assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
  });

  test('HEAD / and HEAD /assets/* answer 200 with the GET headers and no body; HEAD of an unknown asset is 404', async () => {
    const base = `http://127.0.0.1:${replica.port}`;
    for (const p of ['/', '/assets/app.js', '/assets/styles.css']) {
      const get = await request(base + p, 'GET');
      const head = await request(base + p, 'HEAD');
      assert.equal(head.status, 200, `HEAD ${p}`);
      assert.equal(head.body.length, 0, `HEAD ${p} has no body`);
      assert.equal(head.headers['content-type'], get.headers['content-type'], p);
      assert.equal(head.headers['content-length'], String(get.body.length), `HEAD ${p} says the GET's length`);
    }
    assert.equal((await request(`${base}/assets/nope.js`, 'HEAD')).status, 404);
  });

  test('assets are sent brotli- or gzip-compressed when the client accepts it (built at build time), with Vary; as they are otherwise', async () => {
    const base = `http://127.0.0.1:${replica.port}`;
    const plain = await request(`${base}/assets/app.js`, 'GET');
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.headers.vary, 'accept-encoding');
    const br = await request(`${base}/assets/app.js`, 'GET', { 'accept-encoding': 'gzip, deflate, br' });
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(br.headers.vary, 'accept-encoding');
    assert.deepEqual(brotliDecompressSync(br.body), plain.body);
    const gz = await request(`${base}/assets/app.js`, 'GET', { 'accept-encoding': 'gzip' });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.deepEqual(gunzipSync(gz.body), plain.body);
    // q=0 refuses an encoding.
    assert.equal(
      (await request(`${base}/assets/app.js`, 'GET', { 'accept-encoding': 'br;q=0, gzip' })).headers['content-encoding'],
      'gzip',
    );
    assert.equal((await request(`${base}/assets/app.js`, 'GET', { 'accept-encoding': 'identity' })).headers['content-encoding'], undefined);
    for (const p of ['/', '/assets/styles.css'])
      assert.equal((await request(base + p, 'GET', { 'accept-encoding': 'br' })).headers['content-encoding'], 'br', p);
    const head = await request(`${base}/assets/app.js`, 'HEAD', { 'accept-encoding': 'br' });
    assert.equal(head.headers['content-length'], String(br.body.length));
    process.stderr.write(`app.js: ${plain.body.length} bytes, ${gz.body.length} gzip, ${br.body.length} brotli\n`);
  });

  test('/health/origin says whether an origin may open sockets (a refused upgrade is all a browser sees)', async () => {
    const base = `http://127.0.0.1:${replica.port}`;
    const ask = (origin: string) =>
      fetch(`${base}/health/origin?origin=${encodeURIComponent(origin)}`).then(async (r) => [r.status, await r.json()]);
    assert.deepEqual(await ask('http://192.168.1.20:3000'), [200, { origin: 'http://192.168.1.20:3000', allowed: false }]);
    assert.deepEqual(await ask('https://chat.example.com'), [200, { origin: 'https://chat.example.com', allowed: true }]);
    const none = await fetch(`${base}/health/origin`);
    assert.equal(none.status, 400);
  });

  test('no path reaches a file outside the build: traversal, encoded traversal, unknown names are 404', async () => {
    for (const target of [
      '/assets/../package.json',
      '/assets/../../package.json',
      '/assets/%2e%2e/%2e%2e/package.json',
      '/assets/..%2f..%2fpackage.json',
      '/assets/nope.js',
      '/assets/',
      '/assets//etc/passwd',
    ]) {
      const r = await rawGet(replica.port, target);
      assert.equal(r.status, 404, `${target}: ${r.status}`);
      assert.doesNotMatch(r.body, /"name": "hubbub"|root:/, target);
    }
  });
});

test('a hub started at a terminal prints, in words, the address to open', { timeout: 120_000 }, async () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-tty-'));
  const port = await freePort();
  // `script` gives the hub a terminal for its stdout, as `npm start` in a shell has.
  const child = spawn('script', ['-qfec', `${process.execPath} --import tsx server/src/main.ts`, '/dev/null'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', DATA_DIR: dataDir, PORT: String(port), METRICS_PORT: '0', HOST: '0.0.0.0', LOG_LEVEL: 'warn' },
    stdio: ['pipe', 'pipe', 'pipe'],
    // Its own process group, so the hub under `script` stops with it.
    detached: true,
  });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        const m = /Hubbub is running[^\r\n]*/.exec(out);
        if (m) resolve(m[0]);
      });
      child.once('exit', (c) => reject(new Error(`exited ${c}: ${out}`)));
      setTimeout(() => reject(new Error(`no start-up line within 60 s: ${out}`)), 60_000).unref();
    });
    assert.equal(line, `Hubbub is running: open http://localhost:${port} in a browser.`);
  } finally {
    process.kill(-child.pid!, 'SIGTERM');
    if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
  }
});
