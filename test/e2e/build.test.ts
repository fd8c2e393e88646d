/**
 * The production build (scripts/build.ts): the hub runs from dist/ with no TypeScript loader,
 * finds the files it reads by path (migrations, web/dist, the password worker, the uWS binary),
 * serves the page, the API and sockets; and what an idle hub does not use stays out of its
 * static import graph (loaded lazily, only when the configuration or a first use needs it).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { before, describe, it } from 'node:test';
import { buildServer, distDir, entries } from '../../scripts/build.ts';
import { buildWeb } from '../../scripts/build-web.ts';
import { newUser } from '../helpers/server.ts';
import { connect } from '../helpers/ws.ts';

const root = path.resolve(import.meta.dirname, '..', '..');

/** The packages a file of dist/ imports statically, following its relative imports (chunks). */
function staticPackages(entry: string, seen = new Set<string>(), out = new Set<string>()): Set<string> {
  if (seen.has(entry)) return out;
  seen.add(entry);
  const text = readFileSync(entry, 'utf8');
  for (const m of text.matchAll(/^import\s(?:[^;]*?\sfrom\s)?"([^"]+)"/gms)) {
    const spec = m[1]!;
    if (spec.startsWith('.')) staticPackages(path.resolve(path.dirname(entry), spec), seen, out);
    else if (!spec.startsWith('node:')) out.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
  }
  return out;
}

describe('production build', () => {
  // Built here from the current sources (a stale dist/ would test old code).
  before(async () => {
    await Promise.all([buildServer(), buildWeb()]);
  });

  it('writes every entry point as JavaScript under dist/', () => {
    for (const name of Object.keys(entries)) assert.ok(existsSync(path.join(distDir, `${name}.js`)), name);
  });

  it('the hub statically imports none of what an idle embedded hub does not use', () => {
    const pkgs = staticPackages(path.join(distDir, 'server', 'main.js'));
    assert.ok(pkgs.has('zod') && pkgs.has('pino'), `the graph was read: ${[...pkgs].join(', ')}`);
    for (const lazy of [
      'tsx',
      'stripe',
      'nodemailer',
      'web-push',
      'bullmq',
      'ioredis',
      'cassandra-driver',
      'postgres',
      '@electric-sql/pglite',
    ]) {
      assert.ok(!pkgs.has(lazy), `${lazy} is imported statically by dist/server/main.js`);
    }
  });

  it('node dist/server/main.js in a fresh DATA_DIR serves /, /health, /health/ready, a login and a socket, and drains on SIGTERM', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-dist-'));
    const child = spawn(process.execPath, ['dist/server/main.js'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HOME: os.homedir(), DATA_DIR: dataDir, PORT: '0', METRICS_PORT: '0', HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const killOnExit = () => child.kill('SIGKILL');
    process.on('exit', killOnExit);
    const messages: string[] = [];
    const stderr: string[] = [];
    child.stderr!.on('data', (b) => stderr.push(String(b)));
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    try {
      const port = await new Promise<number>((resolve, reject) => {
        createInterface({ input: child.stdout! }).on('line', (line) => {
          const j = JSON.parse(line) as { msg: string; port?: number };
          messages.push(j.msg);
          if (j.msg === 'hub listening') resolve(j.port!);
        });
        void exited.then((c) => reject(new Error(`exited ${c} before listening: ${stderr.join('')}`)));
      });
      const base = `http://127.0.0.1:${port}`;
      assert.deepEqual(await (await fetch(`${base}/health`)).json(), { status: 'ok' });
      assert.equal((await fetch(`${base}/health/ready`)).status, 200);
      assert.match(await (await fetch(`${base}/`)).text(), /Hubbub/);
      assert.equal((await fetch(`${base}/assets/app.js`)).status, 200);

      // Sign-up hashes through the password worker thread (a file found by path); login verifies.
      const alice = await newUser(port, 'dist');
      const login = (await (
        await fetch(`${base}/trpc/auth.login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ login: alice.username, password: alice.password }),
        })
      ).json()) as { result: { data: { accessToken: string } } };
      const bob = await newUser(port, 'dist_b');
      const dm = await alice.client.conversations.createDirect.mutate({ userId: bob.id });
      const { c, ready } = await connect(port, login.result.data.accessToken);
      assert.equal(ready.type, 'ready');
      const ack = await c.request({ type: 'send', conv: dm.id, cid: 'dist-1', body: 'from the build' });
      assert.equal(ack.type, 'ack');
      const history = await bob.client.conversations.history.query({ conversationId: dm.id });
      assert.equal(history.lastSeq, ack.seq);
      assert.equal((history.events.find((e) => e.seq === ack.seq) as { body?: string } | undefined)?.body, 'from the build');
      c.ws.close();

      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.ok(messages.includes('drained, exiting'), messages.join(', '));
    } finally {
      process.off('exit', killOnExit);
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
