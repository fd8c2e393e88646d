/**
 * `npm run backup:pglite`: a consistent copy of the embedded database's folder (DATA_DIR, default
 * ./data: the PGlite files, the development secrets, local attachments) into
 * $BACKUP_DIR/pglite/<UTC time>.tar.gz, keeping the newest $BACKUP_KEEP (default 7).
 *
 * PGlite runs inside the hub's process and has no online backup a second process could take, so
 * this is a stop-copy-start: the copy takes the folder's lock first (the same lock the hub holds
 * while it runs), so it is refused while a hub runs and no hub can start until it is done. Stop
 * the hub, run this, start the hub. Restore: stop the hub, move DATA_DIR aside, extract the copy
 * in its place, `npm run restore:epochs`, start the hub (docs/backups.md).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { DataDirLockedError, lockDataDir } from '../../server/src/db/data-dir-lock.ts';

const dataDir = path.resolve(process.env.DATA_DIR ?? './data');
const backupDir = process.env.BACKUP_DIR;
const keep = Number(process.env.BACKUP_KEEP ?? '7');
if (!backupDir) {
  process.stderr.write('backup:pglite: BACKUP_DIR is required\n');
  process.exit(2);
}
if (!Number.isInteger(keep) || keep < 1) {
  process.stderr.write('backup:pglite: BACKUP_KEEP must be a whole number >= 1\n');
  process.exit(2);
}
let lock: ReturnType<typeof lockDataDir>;
try {
  lock = lockDataDir(dataDir);
} catch (err) {
  if (!(err instanceof DataDirLockedError)) throw err;
  process.stderr.write(`backup:pglite: ${err.message}\nStop the hub first: the copy is consistent only while nothing writes.\n`);
  process.exit(75);
}
const out = path.join(path.resolve(backupDir), 'pglite');
mkdirSync(out, { recursive: true });
const stamp = new Date()
  .toISOString()
  .replace(/[-:]/g, '')
  .replace(/\.\d+Z$/, 'Z');
const file = path.join(out, `${stamp}.tar.gz`);
try {
  const tmp = `${file}.partial`;
  // The lock file is this process's: a restored copy must not carry it.
  const tar = spawnSync('tar', ['-czf', tmp, '--exclude=./pglite.lock', '-C', dataDir, '.'], { stdio: 'inherit' });
  if (tar.status !== 0) throw new Error(`tar exited ${tar.status}`);
  renameSync(tmp, file);
  process.stdout.write(`backup ${file}\n`);
} finally {
  lock.release();
}
const all = readdirSync(out)
  .filter((n) => n.endsWith('.tar.gz'))
  .sort();
for (const old of all.slice(0, Math.max(0, all.length - keep))) {
  rmSync(path.join(out, old));
  process.stdout.write(`pruned ${old}\n`);
}
