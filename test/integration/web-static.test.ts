import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { buildWeb } from '../../scripts/build-web.ts';
import type { Replica } from '../../server/src/replica.ts';
import { startTestReplica, testEnv, type TestEnv } from '../helpers/server.ts';

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
    replica = await startTestReplica(env.env);
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

  test('no path reaches a file outside the build: traversal, encoded traversal, unknown names are 404', async () => {
    for (const target of ['/assets/../package.json', '/assets/../../package.json', '/assets/%2e%2e/%2e%2e/package.json', '/assets/..%2f..%2fpackage.json', '/assets/nope.js', '/assets/', '/assets//etc/passwd']) {
      const r = await rawGet(replica.port, target);
      assert.equal(r.status, 404, `${target}: ${r.status}`);
      assert.doesNotMatch(r.body, /"name": "hubbub"|root:/, target);
    }
  });
});
