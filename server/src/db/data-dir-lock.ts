import { randomBytes } from 'node:crypto';
import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';

/**
 * One process at a time on an embedded (PGlite) database folder. PGlite has no server: two
 * processes opening the same files each believe they own them, and one's writes are lost.
 *
 * A pid file created atomically (written aside, then hard-linked into place, which fails if the
 * name exists) names the holder. A file left by a process that died without releasing it (SIGKILL,
 * a crash) is taken over when that pid is gone, or is now another process (its start time differs),
 * as PostgreSQL does with postmaster.pid. A holder on another host cannot be checked from here, so
 * it is refused with the file to delete by hand. No dependency: `proper-lockfile` (MIT) refreshes
 * an mtime on a timer and takes a lock over once it is older than `stale`, so after a SIGKILL the
 * next start waits out that delay, and a holder whose event loop is blocked longer (a PGlite
 * migration runs synchronously) loses its lock while still running.
 */
export interface LockHolder {
  pid: number;
  host: string;
  /** When the holder took the lock (ISO 8601). */
  since: string;
  /** The holder's script, relative to its working directory (e.g. dist/server/main.js). */
  command: string;
  /** Linux: the holder's start time in clock ticks after boot, to tell a reused pid apart. */
  startTicks?: number;
}

export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError';
  constructor(
    readonly dir: string,
    readonly file: string,
    readonly holder: LockHolder | null,
    unverifiable: boolean,
  ) {
    const who = holder
      ? `pid ${holder.pid} (${holder.command}) on host ${holder.host}, since ${holder.since}`
      : 'another process (its lock file cannot be read)';
    super(
      `the embedded database in ${dir} is in use by ${who}. ` +
        'PGlite belongs to one process at a time: stop that process first, or set DATABASE_URL so that several processes share PostgreSQL.' +
        (unverifiable ? ` If no process uses ${dir} any more, delete ${file}.` : ''),
    );
  }
}

export interface DataDirLock {
  file: string;
  release(): void;
}

const LOCK_NAME = 'pglite.lock';

/** Takes the folder's lock or throws DataDirLockedError naming its holder. `dir` must exist. */
export function lockDataDir(dir: string): DataDirLock {
  const abs = path.resolve(dir);
  const file = path.join(abs, LOCK_NAME);
  const me: LockHolder = {
    pid: process.pid,
    host: hostname(),
    since: new Date().toISOString(),
    command: process.argv[1] ? path.relative(process.cwd(), process.argv[1]) : process.argv0,
    startTicks: startTicksOf(process.pid),
  };
  const text = JSON.stringify(me) + '\n';
  // Two rounds: the second after taking over a stale file; losing it again means another starter won.
  for (let round = 0; round < 2; round++) {
    if (tryCreate(file, text)) return held(file, text);
    const seen = readHolder(file);
    if (seen === 'gone') continue;
    if (seen === null) throw new DataDirLockedError(abs, file, null, true);
    const state = holderState(seen);
    if (state !== 'dead') throw new DataDirLockedError(abs, file, seen, state === 'unknown');
    removeIfSame(file, seen);
  }
  const last = readHolder(file);
  throw new DataDirLockedError(abs, file, last === 'gone' ? null : last, false);
}

function tryCreate(file: string, text: string): boolean {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(tmp, text, { mode: 0o644 });
  try {
    linkSync(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(tmp);
  }
}

function held(file: string, text: string): DataDirLock {
  // Any exit that runs JavaScript (process.exit, an uncaught error) frees the folder at once;
  // only a kill leaves the file, and the next start sees its pid is gone.
  const release = () => {
    process.off('exit', release);
    try {
      if (readFileSync(file, 'utf8') === text) unlinkSync(file);
    } catch (err) {
      // Already removed by hand: nothing is held any more, which is what release wants.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  };
  process.on('exit', release);
  return { file, release };
}

/** The holder in the file; 'gone' if there is no file any more; null if it cannot be parsed. */
function readHolder(file: string): LockHolder | 'gone' | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw err;
  }
  try {
    const h = JSON.parse(text) as LockHolder;
    return Number.isSafeInteger(h.pid) && h.pid > 0 && typeof h.host === 'string' ? h : null;
  } catch {
    // Written atomically by lockDataDir, so this is not ours half-written: refuse, and say which file.
    return null;
  }
}

/** 'alive', 'dead', or 'unknown' (another host: its processes cannot be seen from here). */
export function holderState(h: LockHolder): 'alive' | 'dead' | 'unknown' {
  if (h.host !== hostname()) return 'unknown';
  // A process with our pid before us (a container's pid numbering starts afresh) is gone.
  if (h.pid === process.pid) return h.startTicks !== undefined && h.startTicks === startTicksOf(process.pid) ? 'alive' : 'dead';
  try {
    process.kill(h.pid, 0);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return 'dead';
    // EPERM: it exists, owned by another user.
    if (code !== 'EPERM') throw err;
  }
  // A zombie (killed, not yet reaped: its parent died too and PID 1 of a container may never reap)
  // still answers kill(0), but it holds no files any more.
  if (stateOf(h.pid) === 'Z') return 'dead';
  const now = startTicksOf(h.pid);
  return h.startTicks !== undefined && now !== undefined && now !== h.startTicks ? 'dead' : 'alive';
}

/**
 * Removes a stale file if it still names the holder we judged dead. Two starters that both judged
 * it dead can still interleave here (remove, create, remove the other's fresh file); the window is
 * a few microseconds after a crash, the same that PostgreSQL accepts for postmaster.pid.
 */
function removeIfSame(file: string, seen: LockHolder) {
  const now = readHolder(file);
  if (now === 'gone' || now === null || now.pid !== seen.pid || now.since !== seen.since) return;
  try {
    unlinkSync(file);
  } catch (err) {
    // Removed by the other starter first: the next round creates ours or reads theirs.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** Fields 3 onwards of /proc/<pid>/stat (Linux); undefined elsewhere or if the process is gone. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    // No /proc (macOS) or the process just exited: the pid check alone decides.
    return undefined;
  }
}

/** Field 3 of /proc/<pid>/stat: the process state ('Z' for a zombie). */
function stateOf(pid: number): string | undefined {
  return statFields(pid)?.[0];
}

/** Field 22 of /proc/<pid>/stat: the start time in clock ticks after boot. */
function startTicksOf(pid: number): number | undefined {
  const fields = statFields(pid);
  const ticks = Number(fields?.[19]);
  return fields && Number.isFinite(ticks) ? ticks : undefined;
}
