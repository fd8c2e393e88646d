import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { after, test } from 'node:test';
import { DataDirLockedError, lockDataDir, type LockHolder } from './data-dir-lock.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'hubbub-lock-'));
  dirs.push(d);
  return d;
};

/** Another process that takes the lock and keeps it until killed. */
async function holder(dir: string) {
  const code = `const { lockDataDir } = await import(process.argv[1]); lockDataDir(process.argv[2]); process.stdout.write('locked\\n'); setInterval(() => {}, 60_000);`;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', code, new URL('./data-dir-lock.ts', import.meta.url).pathname, dir],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  process.on('exit', () => child.kill('SIGKILL'));
  const [line] = await once(child.stdout!, 'data');
  assert.equal(String(line), 'locked\n');
  return child;
}

const lockedBy = (fn: () => unknown): DataDirLockedError => {
  try {
    fn();
  } catch (err) {
    if (err instanceof DataDirLockedError) return err;
    throw err;
  }
  assert.fail('the lock was taken although another process holds it');
};

test('a live holder keeps the folder: refused with the folder, its pid and script named', async () => {
  const dir = tempDir();
  const child = await holder(dir);
  try {
    const err = lockedBy(() => lockDataDir(dir));
    assert.equal(err.holder?.pid, child.pid);
    assert.ok(err.message.includes(dir), err.message);
    assert.ok(err.message.includes(`pid ${child.pid}`), err.message);
    assert.ok(err.message.includes('DATABASE_URL'), err.message);
    // Its processes are visible here: no advice to delete the file.
    assert.ok(!err.message.includes('delete'), err.message);
  } finally {
    child.kill('SIGKILL');
  }
});

test('a holder killed with SIGKILL leaves its file, and the next process takes the folder over', async () => {
  const dir = tempDir();
  const child = await holder(dir);
  child.kill('SIGKILL');
  await once(child, 'exit');
  const file = path.join(dir, 'pglite.lock');
  assert.equal((JSON.parse(readFileSync(file, 'utf8')) as LockHolder).pid, child.pid, 'the killed holder could not remove its file');
  const lock = lockDataDir(dir);
  assert.equal((JSON.parse(readFileSync(file, 'utf8')) as LockHolder).pid, process.pid);
  // Held by this process now: a second open here is refused too.
  assert.equal(lockedBy(() => lockDataDir(dir)).holder?.pid, process.pid);
  lock.release();
  assert.equal(existsSync(file), false);
  lockDataDir(dir).release();
});

test('a file whose pid now belongs to another process (started later) is stale', async () => {
  const dir = tempDir();
  const child = await holder(dir);
  try {
    const file = path.join(dir, 'pglite.lock');
    const h = JSON.parse(readFileSync(file, 'utf8')) as LockHolder;
    if (h.startTicks === undefined) return assert.ok(process.platform !== 'linux', 'Linux records the start time');
    writeFileSync(file, JSON.stringify({ ...h, startTicks: h.startTicks - 1 }));
    const lock = lockDataDir(dir);
    assert.equal((JSON.parse(readFileSync(file, 'utf8')) as LockHolder).pid, process.pid);
    lock.release();
  } finally {
    child.kill('SIGKILL');
  }
});

test('a holder on another host cannot be checked: refused, with the file to delete if it is gone', () => {
  const dir = tempDir();
  const file = path.join(dir, 'pglite.lock');
  writeFileSync(
    file,
    JSON.stringify({ pid: 999_999, host: 'elsewhere.invalid', since: '2000-01-01T00:00:00.000Z', command: 'dist/server/main.js' }),
  );
  const err = lockedBy(() => lockDataDir(dir));
  assert.ok(err.message.includes('elsewhere.invalid') && err.message.includes(`delete ${file}`), err.message);
  writeFileSync(file, 'not json');
  assert.match(lockedBy(() => lockDataDir(dir)).message, /cannot be read.*delete/);
});

test('a holder killed but never reaped (a zombie: its parent died too, and a container PID 1 may never wait) is stale', async () => {
  const dir = tempDir();
  // A child that exits at once, of a parent that never waits for it: a zombie. (Perl is in every
  // Debian; a shell may reap its background job before it execs.)
  const parent = spawn('perl', ['-e', '$| = 1; my $p = fork(); exit 0 unless $p; print "$p\n"; sleep 30'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  process.on('exit', () => parent.kill('SIGKILL'));
  try {
    const pid = Number(String((await once(parent.stdout!, 'data'))[0]).trim());
    const stateOf = () => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0];
    while (stateOf() !== 'Z') await new Promise((r) => setImmediate(r));
    process.kill(pid, 0); // still answers, as a zombie does
    const file = path.join(dir, 'pglite.lock');
    writeFileSync(file, JSON.stringify({ pid, host: os.hostname(), since: new Date().toISOString(), command: 'dist/server/main.js' }));
    const lock = lockDataDir(dir);
    assert.equal((JSON.parse(readFileSync(file, 'utf8')) as LockHolder).pid, process.pid);
    lock.release();
  } finally {
    parent.kill('SIGKILL');
  }
});
