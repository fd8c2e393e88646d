import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { processTree } from '../../load-tests/harness/procs.ts';
import { trpcClient } from '../helpers/server.ts';
import { npmStart } from '../helpers/npm-start.ts';
import { connect } from '../helpers/ws.ts';

test('2 npm start with no environment runs the build, serves /health, the API and a socket work, a restart keeps the user', async () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-start-'));
  try {
    let s = npmStart(dataDir);
    let port = await s.port;
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });
    const ready = await fetch(`http://127.0.0.1:${port}/health/ready`);
    assert.equal(ready.status, 200);
    const page = await fetch(`http://127.0.0.1:${port}/`);
    assert.match(await page.text(), /Hubbub/);
    // `npm start` built the web client first: its bundle is served.
    const bundle = await fetch(`http://127.0.0.1:${port}/assets/app.js`);
    assert.equal(bundle.status, 200);
    assert.equal(bundle.headers.get('content-type'), 'text/javascript; charset=utf-8');
    const reg = await trpcClient(port).auth.register.mutate({
      email: 'first@example.com',
      username: 'first_user',
      password: 'first password',
    });
    assert.equal((await trpcClient(port, reg.accessToken).auth.me.query()).username, 'first_user');
    const socket = await connect(port, reg.accessToken);
    assert.equal(socket.ready.type, 'ready');
    socket.c.close();
    // The hub npm started is the production build, with no TypeScript loader.
    const cmds = processTree(s.child.pid!).map((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '));
    assert.ok(
      cmds.some((cmd) => cmd.includes('dist/server/main.js')),
      cmds.join('\n'),
    );
    assert.ok(!cmds.some((cmd) => cmd.includes('tsx')), cmds.join('\n'));

    s.stop();
    await s.exited;
    assert.ok(s.messages.includes('draining') && s.messages.includes('drained, exiting'), s.messages.join(', '));

    s = npmStart(dataDir);
    port = await s.port;
    const login = await trpcClient(port).auth.login.mutate({ login: 'first_user', password: 'first password' });
    assert.equal(login.user.id, reg.user.id);
    // The development JWT secret was kept in DATA_DIR: the old access token still verifies.
    assert.equal((await trpcClient(port, reg.accessToken).auth.me.query()).id, reg.user.id);
    s.stop();
    await s.exited;
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
