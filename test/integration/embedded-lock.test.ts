import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { LockHolder } from '../../server/src/db/data-dir-lock.ts';
import { npmStart } from '../helpers/npm-start.ts';
import { newUser, trpcClient } from '../helpers/server.ts';

const root = path.resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const dataDir = () => {
  const d = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'hubbub-embedded-')));
  dirs.push(d);
  return d;
};
const holderOf = (dir: string) => JSON.parse(readFileSync(path.join(dir, 'pglite.lock'), 'utf8')) as LockHolder;
const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');

/** `npm run <script>` exactly as an operator types it, on the embedded database in `dir`. */
function npmRun(dir: string, script: string, args: string[] = []) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      'npm',
      ['run', '--silent', script, '--', ...args],
      { cwd: root, env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/root', DATA_DIR: dir } },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('one process per embedded database (PGlite in DATA_DIR)', () => {
  test('7 a second `npm start` (and `npm run db:migrate`) on the same folder refuses, naming the folder and the running hub, and exits 75', async () => {
    const dir = dataDir();
    const first = npmStart(dir);
    try {
      const port = await first.port;
      const h = holderOf(dir);
      assert.match(cmdline(h.pid), /dist\/server\/main\.js/);
      const second = npmStart(dir);
      await assert.rejects(second.port, /npm start exited/);
      assert.equal(await second.exited, 75);
      const err = second.stderr();
      assert.ok(err.includes(`the embedded database in ${dir} is in use by pid ${h.pid} (dist/server/main.js)`), err);
      const migrate = await npmRun(dir, 'db:migrate');
      assert.equal(migrate.code, 75);
      assert.ok(migrate.stderr.includes(`db:migrate: the embedded database in ${dir} is in use by pid ${h.pid}`), migrate.stderr);
      // The first hub was not disturbed: it still serves, and the folder is still its own.
      assert.equal((await fetch(`http://127.0.0.1:${port}/health/ready`)).status, 200);
      assert.equal(holderOf(dir).pid, h.pid);
    } finally {
      first.stop();
      await first.exited;
    }
  });

  test('7 a hub killed with SIGKILL leaves its lock, and the next `npm start` takes the folder over with the data', async () => {
    const dir = dataDir();
    const first = npmStart(dir);
    const port = await first.port;
    const u = await newUser(port, 'killed');
    const dead = holderOf(dir).pid;
    process.kill(-first.child.pid!, 'SIGKILL');
    await first.exited;
    assert.equal(holderOf(dir).pid, dead, 'SIGKILL left the lock file behind');
    const next = npmStart(dir);
    try {
      const port2 = await next.port;
      assert.notEqual(holderOf(dir).pid, dead);
      const login = await trpcClient(port2).auth.login.mutate({ login: u.username, password: u.password });
      assert.equal(login.user.id, u.id);
    } finally {
      next.stop();
      await next.exited;
    }
  });

  test('7 `npm run payments:grant` while the hub runs is refused and moves no money; with the hub stopped it grants', async () => {
    const dir = dataDir();
    let hub = npmStart(dir);
    let port = await hub.port;
    const u = await newUser(port, 'granted');
    const pid = holderOf(dir).pid;
    const refused = await npmRun(dir, 'payments:grant', ['--user', u.username, '--amount', '700', '--key', 'k1']);
    assert.equal(refused.code, 75);
    assert.doesNotMatch(refused.stdout, /granted/);
    assert.ok(refused.stderr.includes(`nothing granted: the embedded database in ${dir} is in use by pid ${pid}`), refused.stderr);
    assert.match(refused.stderr, /stop it, run the grant, start it again/);
    assert.equal((await u.client.payments.balance.query()).balance, 0);
    hub.stop();
    await hub.exited;

    const ok = await npmRun(dir, 'payments:grant', ['--user', u.username, '--amount', '700', '--key', 'k1']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^granted 700 usd to .*: balance 700/);
    hub = npmStart(dir);
    try {
      port = await hub.port;
      const client = trpcClient(port, (await trpcClient(port).auth.login.mutate({ login: u.username, password: u.password })).accessToken);
      assert.equal((await client.payments.balance.query()).balance, 700);
    } finally {
      hub.stop();
      await hub.exited;
    }
  });
});
