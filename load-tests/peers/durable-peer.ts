/**
 * Peer 3, the durable floor: the least a server on Hubbub's own stack can do for the fanout
 * workload once every message must be durable before anyone sees it and must reach the members
 * on another replica. Run as two replicas, like Hubbub. Per `send`:
 *   1. one prepared statement on postgres.js (a per-room head row bumped and the event inserted
 *      in the same commit, synchronous_commit on, the same PostgreSQL as Hubbub's);
 *   2. once it commits, one PUBLISH on ioredis of the event frame, and the `ack` to the sender;
 *   3. each replica hears it on one pattern subscription and hands it to uWS's native pub/sub
 *      (`app.publish`, C++ fanout to the room's sockets there).
 * Nothing else: no ordering across replicas beyond what Redis gives, no resume, no history, no
 * idempotency check, no limits, no presence, no metrics. So its deliveries per CPU second are
 * the ceiling of any durable, replicated server built on uWS + postgres.js + ioredis on this box;
 * bare uWS's (peer 0) are the ceiling of one that stores and replicates nothing. Hubbub's issue
 * target for fanout CPU is a ratio to bare uWS; this peer says how much of that ratio the
 * durable write and the cross-replica hop alone take, in the same run.
 */
import type { us_socket } from 'uWebSockets.js';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { randomUUID } from 'node:crypto';
import { uws } from '../../server/src/uws.ts';
import { Directory, peerEnv } from './directory.ts';

const env = peerEnv();
if (!env.redisUrl) throw new Error('REDIS_URL is required');
const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) throw new Error('DATABASE_URL is required');
const directory = new Directory(env.seedFile, env.secret);
const channelPrefix = `${env.redisPrefix}floor:`;

// One connection: postgres.js pipelines the statements on it, so a room's appends (one sender
// per room, several in flight) commit and return in the order they were sent.
const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
const pub = new Redis(env.redisUrl);
const sub = new Redis(env.redisUrl);

// Both replicas start together: the tables are made under an advisory lock.
await sql.begin(async (tx) => {
  await tx`select pg_advisory_xact_lock(7340033)`;
  await tx`create table if not exists floor_heads (room text primary key, last_seq bigint not null)`;
  await tx`create table if not exists floor_events (room text not null, seq bigint not null, id uuid not null, sender text not null, cid text not null, ts timestamptz not null, body text not null, primary key (room, seq))`;
});

const APPEND = `with h as (
    insert into floor_heads as h (room, last_seq) values ($1, 1)
    on conflict (room) do update set last_seq = h.last_seq + 1
    returning last_seq)
  insert into floor_events (room, seq, id, sender, cid, ts, body)
  select $1, h.last_seq, $2, $3, $4, to_timestamp($5::double precision / 1000), $6 from h
  returning seq`;

interface UserData {
  user: string;
  rooms: string[];
  convs: Record<string, number>;
}

let connections = 0;
const app = uws.App();

await sub.psubscribe(`${channelPrefix}*`);
sub.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, message: Buffer) => {
  app.publish(channel.toString('latin1', channelPrefix.length), message, false);
});

app.get('/stats', (res) => {
  res.writeHeader('content-type', 'application/json').end(JSON.stringify({ connections }));
});
app.any('/*', (res) => {
  res.writeStatus('404 Not Found').end();
});

app.ws<UserData>('/ws', {
  compression: uws.DISABLED,
  maxPayloadLength: 64 * 1024,
  idleTimeout: 0,
  // As in the bare uWS peer: far above anything this workload queues (a drop would count as lost).
  maxBackpressure: 64 * 1024 * 1024,

  upgrade: (res, req, context) => {
    const key = req.getHeader('sec-websocket-key');
    const protocol = req.getHeader('sec-websocket-protocol').split(',')[0]!.trim();
    const extensions = req.getHeader('sec-websocket-extensions');
    const token = /^Bearer (\S+)$/.exec(req.getHeader('authorization'))?.[1];
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    void directory.verify(token).then((user) => {
      if (aborted) return;
      res.cork(() => {
        if (!user) {
          res.writeStatus('401 Unauthorized').end();
          return;
        }
        res.upgrade<UserData>({ user, rooms: directory.roomsOf(user), convs: {} }, key, protocol, extensions, context);
      });
    });
  },

  open: (ws) => {
    connections++;
    const data = ws.getUserData();
    for (const id of data.rooms) {
      ws.subscribe(id);
      data.convs[id] = 0;
    }
    ws.send(JSON.stringify({ type: 'ready', user: { id: data.user }, convs: data.convs }));
  },

  message: (ws, message, isBinary) => {
    if (isBinary) return;
    const { user, convs } = ws.getUserData();
    let f: { type?: string; ref?: string; conv?: string; cid?: string; body?: string };
    try {
      f = JSON.parse(Buffer.from(message).toString('utf8'));
    } catch {
      return void ws.send(JSON.stringify({ type: 'error', code: 'BAD_REQUEST', message: 'bad json' }));
    }
    const reply = (frame: object) => {
      // The socket may have closed while the statement ran.
      try {
        ws.send(JSON.stringify(frame), false);
      } catch {}
    };
    switch (f.type) {
      case 'send': {
        const { conv, cid, body, ref } = f;
        if (typeof conv !== 'string' || typeof body !== 'string' || typeof cid !== 'string' || !directory.isMember(conv, user)) {
          return reply({ type: 'error', ref, code: 'FORBIDDEN', message: 'not a member' });
        }
        const id = randomUUID();
        const ts = Date.now();
        sql
          .unsafe(APPEND, [conv, id, user, cid, ts, body], { prepare: true })
          .then((rows) => {
            const seq = Number(rows[0]!.seq);
            void pub.publish(channelPrefix + conv, JSON.stringify({ body, type: 'event', conv, seq, kind: 'message', id, from: user, ts, cid }));
            reply({ type: 'ack', conv, cid, seq, id, ts, ref });
          })
          .catch((err: Error) => reply({ type: 'error', ref, code: 'INTERNAL', message: err.message }));
        return;
      }
      case 'resume':
        return reply({ type: 'resumed', ref: f.ref, convs, cursors: {} });
      case 'ping':
        return reply({ type: 'pong', ref: f.ref });
      default:
        return reply({ type: 'error', ref: f.ref, code: 'BAD_REQUEST', message: 'unknown frame type' });
    }
  },

  close: () => {
    connections--;
  },
});

app.listen(env.host, env.port, (ls) => {
  if (!ls) {
    process.stderr.write(`durable peer: cannot listen on ${env.host}:${env.port}\n`);
    process.exit(1);
  }
  process.stdout.write(JSON.stringify({ msg: 'durable peer listening', port: uws.us_socket_local_port(ls as unknown as us_socket) }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
