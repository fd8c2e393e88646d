/**
 * `@hubbub/client` as a stranger gets it: `npm pack`, installed from the tarball into a fresh
 * project that has only typescript and ws, with the tsconfig.json `tsc --init` writes (strict;
 * skipLibCheck turned off, so the shipped declarations are checked too). The README's example
 * type-checks there with no cast, runs under plain node against a live hub, and runs bundled in
 * Chromium against the same hub; wrong procedure names, inputs and frame fields are type errors.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import type { Browser } from 'puppeteer-core';
import type { Replica } from '../../server/src/replica.ts';
import { launchBrowser } from '../helpers/browser.ts';
import { startTestReplica, testEnv, type TestEnv } from '../helpers/server.ts';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..', '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
/** The example's placeholder address, replaced by the live hub's. */
const PLACEHOLDER = 'http://localhost:3000';

/** A compile-time test: each line after `@ts-expect-error` must be a type error (else TS2578 fails the check). */
const typeErrors = `import { createClient, type ServerFrame } from '@hubbub/client';
import { CloseCodes, type PresenceFrame } from '@hubbub/client/protocol';

export const unauthorized: 4001 = CloseCodes.UNAUTHORIZED.code;
export const seen: PresenceFrame = { type: 'presence', user: 'u', status: 'offline', lastSeen: 0 };
// @ts-expect-error: a presence status is online or offline
export const away: PresenceFrame = { type: 'presence', user: 'u', status: 'away' };

const hub = createClient({ url: '${PLACEHOLDER}', getToken: () => 'a token' });
export async function wrong() {
  // @ts-expect-error: no procedure of that name
  await hub.api.conversations.lisst.query();
  // @ts-expect-error: conversationId is a string
  await hub.api.conversations.history.query({ conversationId: 42 });
  // @ts-expect-error: markRead needs a seq
  await hub.api.conversations.markRead.mutate({ conversationId: 'c' });
  const list = await hub.api.conversations.list.query();
  const unread: number | undefined = list[0]?.unread;
  // @ts-expect-error: the list carries \`unread\`, not \`unreadCount\`
  void list[0]?.unreadCount;
  hub.on('presence', (p) => {
    const online: boolean = p.status === 'online';
    // @ts-expect-error: presence frames have \`status\`, not \`state\`
    void p.state;
    void online;
  });
  // @ts-expect-error: no such event
  hub.on('presense', () => undefined);
  hub.on('frame', (f: ServerFrame) => {
    // @ts-expect-error: a read frame has no body
    if (f.type === 'read') void f.body;
  });
  // @ts-expect-error: send takes a conversation id and a body
  await hub.send({ conv: 'c', body: 'x' });
  return unread;
}
`;

let env: TestEnv;
let replica: Replica;
/** Serves the browser page from another loopback origin (the hub allows it, and answers its CORS preflights). */
let site: Server;
let siteOrigin: string;
let pageJs = '';
/** What the run shows (printed as the test's diagnostics). */
const report: string[] = [];
let browser: Browser;
let dir: string;
let tarball: string;
let files: string[];
let example: string;

before(async () => {
  const t0 = Date.now();
  dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-sdk-fresh-'));
  site = createServer((req, res) => {
    if (req.url === '/')
      res
        .writeHead(200, { 'content-type': 'text/html' })
        .end('<!doctype html><title>sdk</title><script type="module" src="/example.js"></script>');
    else if (req.url === '/example.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(pageJs);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  siteOrigin = `http://127.0.0.1:${(site.address() as { port: number }).port}`;
  env = await testEnv('pglite');
  env.env.ALLOWED_ORIGINS = siteOrigin;
  const packing = run(npm, ['pack', '--json', '--pack-destination', dir], { cwd: path.join(root, 'client'), maxBuffer: 16 << 20 });
  [replica, browser] = await Promise.all([startTestReplica(env.env), launchBrowser()]);
  const packed = JSON.parse((await packing).stdout) as { filename: string; files: { path: string; size: number }[] }[];
  tarball = path.join(dir, packed[0]!.filename);
  files = packed[0]!.files.map((f) => f.path).sort();
  report.push(`npm pack: ${packed[0]!.filename} in ${Date.now() - t0} ms`, ...packed[0]!.files.map((f) => `  ${f.path} (${f.size} B)`));
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const m = /<!-- sdk-example -->\s*```ts\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'README has a ```ts block after <!-- sdk-example -->');
  assert.ok(m[1]!.includes(`'${PLACEHOLDER}'`), `the example connects to '${PLACEHOLDER}'`);
  example = m[1]!.replace(`'${PLACEHOLDER}'`, `'http://127.0.0.1:${replica.port}'`);
});

after(async () => {
  await browser?.close();
  await replica?.stop();
  await new Promise((resolve) => (site ? site.close(resolve) : resolve(undefined)));
  await env?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the tarball ships built JavaScript, bundled declarations and the licence, and no TypeScript source', (t) => {
  for (const line of report.splice(0)) t.diagnostic(line);
  for (const f of [
    'LICENSE',
    'README.md',
    'package.json',
    'dist/index.js',
    'dist/index.cjs',
    'dist/index.d.ts',
    'dist/index.d.cts',
    'dist/protocol/index.js',
    'dist/protocol.cjs',
    'dist/protocol.d.ts',
  ]) {
    assert.ok(files.includes(f), `${f} is in the tarball`);
  }
  assert.deepEqual(
    files.filter((f) => /\.ts$/.test(f) && !/\.d\.c?ts$/.test(f)),
    [],
    'no TypeScript source',
  );
  assert.deepEqual(
    files.filter((f) => f.startsWith('src/') || f.includes('test')),
    [],
  );
  const pkg = JSON.parse(readFileSync(path.join(root, 'client/package.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(pkg.private, undefined);
  assert.equal(pkg.sideEffects, false);
});

test('installed from the tarball into a fresh strict project: the README example type-checks, runs under node and in Chromium', async (t) => {
  let t0 = Date.now();
  const step = (what: string) => (t.diagnostic(`${what} (${Date.now() - t0} ms)`), (t0 = Date.now()));
  const project = path.join(dir, 'app');
  const sh = (cmd: string, args: string[]) => run(cmd, args, { cwd: project, maxBuffer: 16 << 20 });
  writeFileSync(path.join(dir, 'package.json'), '{}');
  await run('mkdir', ['-p', project]);
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'fresh-app', private: true, type: 'module' }, null, 2));
  const tsVersion = (JSON.parse(readFileSync(path.join(root, 'node_modules/typescript/package.json'), 'utf8')) as { version: string })
    .version;
  await sh(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', `typescript@${tsVersion}`, 'ws@8', tarball]);
  const installed = JSON.parse(readFileSync(path.join(project, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  assert.deepEqual(Object.keys(installed.dependencies).sort(), ['@hubbub/client', 'typescript', 'ws']);
  step(`npm install --prefer-offline typescript@${tsVersion} ws@8 ${path.basename(tarball)}`);

  await sh(path.join(project, 'node_modules/.bin/tsc'), ['--init']);
  const tsconfig = readFileSync(path.join(project, 'tsconfig.json'), 'utf8');
  assert.match(tsconfig, /"strict": true/);
  writeFileSync(path.join(project, 'tsconfig.json'), tsconfig.replace('"skipLibCheck": true', '"skipLibCheck": false'));
  writeFileSync(path.join(project, 'example.ts'), example);
  writeFileSync(path.join(project, 'type-errors.ts'), typeErrors);
  assert.doesNotMatch(example, /\bas\s+(unknown|any|[A-Z])|<any>/, 'the example has no cast');

  // The type check, and the emit plain node runs.
  const tsc = await sh(path.join(project, 'node_modules/.bin/tsc'), ['-p', '.']).catch((e: { stdout: string; stderr: string }) => e);
  assert.equal(tsc.stdout + tsc.stderr, '', 'tsc reports nothing');
  step('tsc -p . with the tsconfig of tsc --init (strict), skipLibCheck false: no errors, example.ts and type-errors.ts');

  const node = await run(process.execPath, ['example.js'], { cwd: project, timeout: 20_000 });
  for (const l of node.stdout.trim().split('\n')) t.diagnostic(`node example.js: ${l}`);
  step('node example.js');
  assert.match(node.stdout, /^bob got "hello from alice" \(seq (\d+), acked as \1\)$/m);

  // CommonJS consumers get the same API.
  const cjs = await run(
    process.execPath,
    ['-e', "const c = require('@hubbub/client'); console.log(typeof c.createClient, c.CloseCodes.UNAUTHORIZED.code)"],
    { cwd: project },
  );
  assert.equal(cjs.stdout.trim(), 'function 4001');
  const esm = await run(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      "import { CloseCodes, PROTOCOL } from '@hubbub/client/protocol'; console.log(PROTOCOL, CloseCodes.TOO_SLOW.code)",
    ],
    { cwd: project },
  );
  assert.equal(esm.stdout.trim(), 'hubbub.v1 4009');

  // A browser bundle of the same file, run in Chromium at an origin the hub allows.
  const bundle = await build({
    absWorkingDir: project,
    entryPoints: ['example.ts'],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  const js = bundle.outputFiles[0]!.text;
  assert.doesNotMatch(js, /from\s*["']ws["']/, 'the browser bundle does not import ws');
  const page = await (await browser.createBrowserContext()).newPage();
  const logs: string[] = [];
  const done = new Promise<string>((resolve, reject) => {
    page.on('console', (msg) => {
      logs.push(msg.text());
      if (msg.text().startsWith('bob got')) resolve(msg.text());
    });
    page.on('pageerror', (e) => reject(e));
  });
  pageJs = js;
  await page.goto(`${siteOrigin}/`);
  let timer: NodeJS.Timeout | undefined;
  const line = await Promise.race([
    done,
    new Promise<never>(
      (_, reject) => (timer = setTimeout(() => reject(new Error(`no result in the browser: ${logs.join(' | ')}`)), 20_000)),
    ),
  ]).finally(() => clearTimeout(timer));
  t.diagnostic(`chromium: ${line}`);
  step(`esbuild bundle for browsers (${js.length} B) run in chromium`);
  assert.match(line, /^bob got "hello from alice" \(seq (\d+), acked as \1\)$/);
});
