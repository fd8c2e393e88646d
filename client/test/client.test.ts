import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { build } from 'esbuild';
import WebSocket from 'ws';
import { SocketClient, errorText } from '@hubbub/client';
import type { Replica } from '../../server/src/replica.ts';
import { startTestReplica, testEnv, trpcClient, type TestEnv } from '../../test/helpers/server.ts';

const root = path.resolve(import.meta.dirname, '..', '..');

/** Bytes of `entry` bundled for browsers, minified, then gzipped. */
async function bundledSize(contents: string) {
  const r = await build({ stdin: { contents, resolveDir: root, loader: 'ts' }, bundle: true, minify: true, format: 'esm', platform: 'browser', write: false });
  return gzipSync(r.outputFiles[0]!.contents).length;
}

describe('@hubbub/client', () => {
  test('the socket client bundles for browsers in at most 30 KB min+gzip (no zod), the whole SDK too', async () => {
    const socket = await bundledSize("export { SocketClient } from '@hubbub/client';");
    const all = await bundledSize("export * from '@hubbub/client';");
    assert.ok(socket <= 30 * 1024, `socket client: ${socket} bytes`);
    assert.ok(all <= 30 * 1024, `whole SDK: ${all} bytes`);
    const meta = await build({ stdin: { contents: "export * from '@hubbub/client';", resolveDir: root, loader: 'ts' }, bundle: true, write: false, metafile: true, platform: 'browser' });
    assert.ok(!Object.keys(meta.metafile.inputs).some((f) => f.includes('node_modules/zod')), 'zod is not in the bundle');
  });

  test('the ws package’s WebSocket is accepted without a cast (this file type-checks)', () => {
    const c = new SocketClient({ url: 'ws://127.0.0.1:1/ws', token: () => 'x', WebSocket });
    assert.equal(c.connected, false);
  });

  test('the web client, which passes the DOM’s WebSocket with no cast, type-checks with the DOM lib', async () => {
    const out = await new Promise<{ code: number | null; text: string }>((resolve) => {
      const child = spawn(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', path.join(root, 'web')]);
      let text = '';
      child.stdout.on('data', (b) => (text += b));
      child.stderr.on('data', (b) => (text += b));
      child.on('exit', (code) => resolve({ code, text }));
    });
    assert.equal(out.code, 0, out.text);
  });

  test('errorText turns tRPC zod issues and domain errors into sentences', async () => {
    const env = await testEnv('pglite');
    const r = await startTestReplica(env.env);
    try {
      const anon = trpcClient(r.port);
      const short = await anon.auth.register.mutate({ email: 'x@example.com', username: 'shorty', password: 'short' }).catch((e: unknown) => e);
      assert.equal(errorText(short), 'The password must be at least 8 characters.');
      const bad = await anon.auth.register.mutate({ email: 'nope', username: 'a', password: 'long enough password' }).catch((e: unknown) => e);
      assert.equal(errorText(bad), 'The email address is not a valid email address. The username must be at least 3 characters.');
      const wrong = await anon.auth.login.mutate({ login: 'nobody_here', password: 'whatever it is' }).catch((e: unknown) => e);
      assert.match(errorText(wrong), /^[A-Z][^[\]{}]*\.$/);
    } finally {
      await r.stop();
      await env.cleanup();
    }
  });

  describe('the README example', () => {
    let env: TestEnv;
    let replica: Replica;
    before(async () => {
      env = await testEnv('pglite');
      replica = await startTestReplica(env.env);
    });
    after(async () => {
      await replica?.stop();
      await env?.cleanup();
    });

    test('runs as written against a hub and prints the message Bob received', async () => {
      const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
      const m = /<!-- sdk-example -->\s*```ts\n([\s\S]*?)```/.exec(readme);
      assert.ok(m, 'README has a ```ts block after <!-- sdk-example -->');
      const dir = path.join(root, '.cache', `readme-example-${process.pid}`);
      mkdirSync(dir, { recursive: true });
      const file = path.join(dir, 'example.ts');
      writeFileSync(file, m[1]!);
      try {
        const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
          const child = spawn(process.execPath, ['--import', 'tsx', file], {
            cwd: root,
            env: { ...process.env, HUBBUB_URL: `http://127.0.0.1:${replica.port}` },
          });
          let stdout = '';
          let stderr = '';
          child.stdout.on('data', (b) => (stdout += b));
          child.stderr.on('data', (b) => (stderr += b));
          child.on('exit', (code) => resolve({ code, stdout, stderr }));
        });
        assert.equal(out.code, 0, out.stderr);
        assert.match(out.stdout, /^bob got "hello from alice" \(seq 2\)$/m);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
