import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import WebSocket from 'ws';
import { type Ack, SocketClient, type WebSocketCtor } from '@hubbub/client';
import { openDatabase } from '../../server/src/db/database.ts';
import type { Replica } from '../../server/src/replica.ts';
import { rewindLogs } from '../../server/src/store/log-rewind.ts';
import { createDatabase, startPostgres, type PostgresHandle } from './postgres.ts';
import { newUser, sharedSecret, startTestReplica } from './server.ts';

const repo = path.resolve(import.meta.dirname, '../..');
const script = (name: string) => path.join(repo, 'scripts/backup', name);

export interface RestoreDrillOptions {
  redisUrl: string;
  rooms: number;
  members: number;
  /** Messages each client sends before the backup, after it, and while the database is gone. */
  before: number;
  after: number;
  queued: number;
  /**
   * Restore to a chosen time instead of the backup's end: `before` more messages are acked after
   * the base backup, the time T is taken, the `after` ones follow, and PostgreSQL replays the
   * archived WAL up to T (recovery_target_time).
   */
  pointInTime?: boolean;
}

export interface RestoreDrillReport {
  /** `immediate` (the base backup's end) or the recovery target time. */
  target: string;
  ackedBeforePoint: number;
  ackedAfterPoint: number;
  /** Acked before the point and in the restored history. */
  recovered: number;
  /** Acks the clients' SDKs reported lost with `rewound`. */
  reportedLost: number;
  /** Sends queued while the database was gone: acked, and stored exactly once each. */
  queued: { sent: number; storedOnce: number };
  /** Clients whose events (after `rewound`) equal the server's history exactly, per conversation. */
  clientsMatching: number;
  clients: number;
  /** Clients told `rewound`, per conversation they follow. */
  rewoundNotices: number;
  backupMs: number;
  /** WAL segments the server's archive_command had archived when the database was destroyed. */
  walArchived: number;
  /** From the database's destruction to every client live again with its outbox sent. */
  timeToRecoverMs: number;
  restoreSteps: Record<string, number>;
  problems: string[];
}

interface Tracked {
  sdk: SocketClient;
  hub: number;
  conv: string;
  user: string;
  /** Message events delivered since the last `rewound`: seq → id. */
  log: Map<number, string>;
  order: number[];
  acked: Ack[];
  lost: Ack[];
  rewounds: number;
}

/**
 * The restore drill: SDK clients on two hubs chat; a base backup is taken (WAL archived beside
 * it); more messages are acked; the database is destroyed; it is restored to the backup's point
 * with the repo's scripts; `restore:epochs` runs; the hubs start again. Then every client must
 * hold exactly the server's history, every message acked before the point must be in it once,
 * the acks after it must have been reported lost, and the sends made while the database was
 * gone must be stored once.
 */
export async function runRestoreDrill(o: RestoreDrillOptions): Promise<RestoreDrillReport> {
  const problems: string[] = [];
  const bk = mkdtempSync(path.join(os.tmpdir(), 'hubbub-backup-'));
  chmodSync(bk, 0o777);
  mkdirSync(path.join(bk, 'wal'), { mode: 0o777 });
  chmodSync(path.join(bk, 'wal'), 0o777);
  const config = {
    wal_level: 'replica',
    archive_mode: 'on',
    archive_command: `${script('pg-archive-wal.sh')} %p %f ${bk}/wal`,
    max_wal_senders: '4',
  };
  let pg: PostgresHandle | null = await startPostgres({ config });
  const hubs: (Replica | null)[] = [null, null];
  const ports = [0, 0];
  const clients: Tracked[] = [];
  const env: Record<string, string> = {
    JWT_SECRET: sharedSecret,
    LOGIN_MAX_PER_IP: '100000',
    REDIS_URL: o.redisUrl,
    REDIS_PREFIX: `rd${randomBytes(4).toString('hex')}:`,
  };
  const dbName = 'hubbub';
  try {
    env.DATABASE_URL = await createDatabase(pg.url, dbName);
    for (const i of [0, 1]) {
      hubs[i] = await startTestReplica(env);
      ports[i] = hubs[i]!.port;
    }
    const convs: string[] = [];
    let n = 0;
    for (let r = 0; r < o.rooms; r++) {
      const users = [];
      for (let m = 0; m < o.members; m++) users.push(await newUser(ports[0]!, 'drill'));
      const conv = (
        await users[0]!.client.conversations.createGroup.mutate({ title: `room ${r}`, memberIds: users.slice(1).map((u) => u.id) })
      ).id;
      convs.push(conv);
      for (const u of users) {
        const hub = n++ % 2;
        const sdk = new SocketClient({
          url: () => `ws://127.0.0.1:${ports[hub]}/ws`,
          getToken: () => u.accessToken,
          WebSocket: WebSocket as unknown as WebSocketCtor,
          sendTimeoutMs: 0,
          minDelayMs: 50,
          maxDelayMs: 300,
        });
        const t: Tracked = { sdk, hub, conv, user: u.id, log: new Map(), order: [], acked: [], lost: [], rewounds: 0 };
        sdk.on('event', (e) => {
          if (e.conv !== conv || e.kind !== 'message') return;
          if (t.log.has(e.seq)) problems.push(`client ${u.id} got seq ${e.seq} twice`);
          t.log.set(e.seq, e.id);
          t.order.push(e.seq);
        });
        sdk.on('gap', (g) => problems.push(`unexpected gap ${g.fromSeq}..${g.toSeq}`));
        sdk.on('rewound', (r) => {
          if (r.conv !== conv) return;
          t.rewounds++;
          t.log.clear();
          t.order.length = 0;
          t.lost.push(...r.lost);
        });
        clients.push(t);
      }
    }
    await Promise.all(clients.map((c) => c.sdk.connect()));
    const sendAll = async (count: number, tag: string) => {
      const acks = await Promise.all(
        clients.map(async (c) => {
          const out: Ack[] = [];
          for (let i = 0; i < count; i++) out.push(await c.sdk.send(c.conv, `${tag} ${i} from ${c.user}`));
          c.acked.push(...out);
          return out;
        }),
      );
      return acks.flat();
    };
    const before = await sendAll(o.before, 'before');
    const b0 = Date.now();
    const backup = spawnSync('bash', [script('pg-base-backup.sh')], {
      encoding: 'utf8',
      env: { ...process.env, DATABASE_URL: pg.url, BACKUP_DIR: bk, BACKUP_KEEP: '2' },
    });
    if (backup.status !== 0) throw new Error(`backup failed: ${backup.stderr}`);
    const backupMs = Date.now() - b0;
    // pg_basebackup writes private (0700) folders; it ran as this process's user, the restore
    // runs as the server's (as an operator's would when backups run as postgres).
    spawnSync('chmod', ['-R', 'a+rX', bk]);
    let target = 'immediate';
    if (o.pointInTime) {
      before.push(...(await sendAll(o.before, 'before T')));
      target = await serverTime(pg.url);
    }
    const after = await sendAll(o.after, 'after');
    // The segments holding T and the commits after it must reach the archive before the disk
    // is lost (archive_timeout does it in production): recovery stops at the first commit past T.
    if (o.pointInTime) await archiveCurrentWal(pg.url);

    // The database is gone; the hubs go down with it (and are started again after the restore).
    const walArchived = readdirSync(path.join(bk, 'wal')).filter((f) => /^[0-9A-F]{24}$/.test(f)).length;
    const t0 = Date.now();
    await pg.destroy();
    pg = null;
    await Promise.all(hubs.map((h) => h?.stop()));
    const queued = clients.flatMap((c) =>
      Array.from({ length: o.queued }, (_, i) => ({
        c,
        cid: `queued-${c.user}-${i}`,
        ack: c.sdk.send(c.conv, `queued ${i}`, { cid: `queued-${c.user}-${i}` }),
      })),
    );
    // Awaited below; if the drill fails before that, closing the clients rejects them, and the
    // drill's own error is the one to report.
    for (const q of queued) q.ack.catch(() => undefined);
    const steps: Record<string, number> = {};
    let t = Date.now();
    pg = await startPostgres({
      config,
      init: (data, run) => run('bash', [script('pg-restore.sh'), data, 'latest', target], { BACKUP_DIR: bk }),
    });
    const admin = postgres(pg.url.replace(/\/postgres$/, `/${dbName}`), { max: 1, onnotice: () => undefined });
    try {
      // Connections are refused while it starts up (57P03), then read-only until it promotes.
      for (;;) {
        const promoted = await admin`select not pg_is_in_recovery() as p`.then(
          (rows) => rows[0]!.p as boolean,
          (err: { code?: string }) => {
            if (err.code !== '57P03') throw err;
            return false;
          },
        );
        if (promoted) break;
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await admin.end();
    }
    steps.restoreAndReplay = Date.now() - t;
    env.DATABASE_URL = pg.url.replace(/\/postgres$/, `/${dbName}`);
    t = Date.now();
    const database = await openDatabase({ databaseUrl: env.DATABASE_URL, dataDir: '' });
    try {
      await rewindLogs(database);
    } finally {
      await database.close();
    }
    steps.epochs = Date.now() - t;
    t = Date.now();
    for (const i of [0, 1]) {
      hubs[i] = await startTestReplica(env);
      ports[i] = hubs[i]!.port;
    }
    steps.hubsStart = Date.now() - t;
    const queuedAcks = await Promise.all(queued.map((q) => q.ack));
    await Promise.all(clients.map((c) => c.sdk.connect()));
    const timeToRecoverMs = Date.now() - t0;

    // The server's history per conversation (every page), then each client against it.
    const sql = postgres(env.DATABASE_URL, { max: 1, onnotice: () => undefined });
    const history = new Map<string, Map<number, string>>();
    try {
      for (const conv of convs) {
        const rows = await sql<
          { seq: string; id: string }[]
        >`select seq, id from log_events where conversation_id = ${conv} and kind = 'message' order by seq`;
        history.set(conv, new Map(rows.map((r) => [Number(r.seq), r.id])));
      }
    } finally {
      await sql.end();
    }
    // Live events may still be in flight to some clients: wait until each has the head.
    const deadline = Date.now() + 15_000;
    for (const c of clients) {
      const want = Math.max(...history.get(c.conv)!.keys());
      while (!c.log.has(want) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    }
    let clientsMatching = 0;
    for (const c of clients) {
      const server = [...history.get(c.conv)!.entries()];
      const mine = c.order.map((s) => [s, c.log.get(s)!] as const);
      if (JSON.stringify(mine) === JSON.stringify(server)) clientsMatching++;
      else problems.push(`client ${c.user}: ${mine.length} events, server ${server.length}`);
    }
    const inHistory = (a: Ack) => history.get(a.conv)?.get(a.seq) === a.id;
    const recovered = before.filter(inHistory).length;
    const storedOnce = queuedAcks.filter((a) => {
      const ids = [...history.get(a.conv)!.values()].filter((id) => id === a.id);
      return ids.length === 1;
    }).length;
    const lost = clients.flatMap((c) => c.lost);
    const lostCids = new Set(lost.map((a) => a.cid));
    for (const a of after) if (!lostCids.has(a.cid) && !inHistory(a)) problems.push(`ack ${a.cid} (seq ${a.seq}) lost without a report`);
    return {
      target,
      ackedBeforePoint: before.length,
      ackedAfterPoint: after.length,
      recovered,
      reportedLost: lost.length,
      queued: { sent: queuedAcks.length, storedOnce },
      clientsMatching,
      clients: clients.length,
      rewoundNotices: clients.reduce((s, c) => s + c.rewounds, 0),
      backupMs,
      walArchived,
      timeToRecoverMs,
      restoreSteps: steps,
      problems,
    };
  } finally {
    for (const c of clients) c.sdk.close();
    await Promise.all(hubs.map((h) => h?.stop()));
    await pg?.stop();
    rmSync(bk, { recursive: true, force: true });
  }
}

/**
 * The server's clock now, as a recovery target: every commit acked before this call is at or
 * before it, and every commit after the answer is later (same clock as the commit timestamps).
 */
async function serverTime(url: string): Promise<string> {
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    const [row] = await sql<
      { t: string }[]
    >`select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' as t`;
    return row!.t;
  } finally {
    await sql.end();
  }
}

/** Closes the current WAL segment and waits until archive_command has archived it. */
async function archiveCurrentWal(url: string): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    const [{ wal }] = (await sql`select pg_walfile_name(pg_switch_wal()) as wal`) as unknown as [{ wal: string }];
    const deadline = Date.now() + 30_000;
    for (;;) {
      const [{ last }] = (await sql`select coalesce(last_archived_wal, '') as last from pg_stat_archiver`) as unknown as [{ last: string }];
      if (last >= wal) return;
      if (Date.now() > deadline) throw new Error(`WAL ${wal} not archived within 30 s (last: ${last || 'none'})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await sql.end();
  }
}

export function formatRestoreReport(r: RestoreDrillReport): string {
  return [
    `restore drill: ${r.clients} clients on 2 hubs; recovery target: ${r.target === 'immediate' ? "the base backup's end" : r.target}`,
    `acked before the recovery point: ${r.ackedBeforePoint}, recovered: ${r.recovered}`,
    `acked after the recovery point: ${r.ackedAfterPoint}, reported lost to their senders: ${r.reportedLost}`,
    `sent while the database was gone: ${r.queued.sent}, stored once: ${r.queued.storedOnce}`,
    `clients ending with exactly the server's history: ${r.clientsMatching}/${r.clients} (rewound notices: ${r.rewoundNotices})`,
    `base backup took ${r.backupMs} ms; WAL segments archived: ${r.walArchived}; time to recover ${r.timeToRecoverMs} ms (${Object.entries(
      r.restoreSteps,
    )
      .map(([k, v]) => `${k} ${v} ms`)
      .join(', ')})`,
    `problems: ${r.problems.length ? r.problems.join('; ') : 'none'}`,
  ].join('\n');
}
