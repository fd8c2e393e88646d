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
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { Directory, peerEnv } from './directory.ts';
import { serveUwsPeer } from './uws-app.ts';

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

// Subscribed before listening, so no event is published before this replica hears its room's.
await sub.psubscribe(`${channelPrefix}*`);
const app = serveUwsPeer({
  name: 'durable peer',
  env,
  directory,
  // Every replica starts at 0 and resumes nothing: the floor keeps no history for sockets.
  head: () => 0,
  nextSeq: async (room, e) => {
    const rows = await sql.unsafe(APPEND, [room, e.id, e.from, e.cid, e.ts, e.body], { prepare: true });
    return Number(rows[0]!.seq);
  },
  // Every replica, this one included, hears it on its pattern subscription and fans it out there.
  fanout: (_app, room, frame) => void pub.publish(channelPrefix + room, frame),
});

sub.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, message: Buffer) => {
  app.publish(channel.toString('latin1', channelPrefix.length), message, false);
});
