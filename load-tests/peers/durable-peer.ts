/**
 * Peer 3, the durable floor: the least a server on Hubbub's own stack can do once every message must be durable before
 * anyone sees it and must reach members on another replica. Two replicas, like Hubbub. Per `send`: one prepared
 * statement on postgres.js (a per-room head row bumped and the event inserted in one commit, on Hubbub's PostgreSQL);
 * once it commits, one PUBLISH on ioredis and the `ack`; each replica hears it on a pattern subscription and hands it to
 * uWS's native fanout. Nothing else: no ordering across replicas beyond Redis's, no resume, history, idempotency, limits,
 * presence or metrics. Its deliveries per CPU-second are the ceiling of a durable, replicated server on uWS +
 * postgres.js + ioredis here: how much of Hubbub's ratio to bare uWS durability and the cross-replica hop alone take.
 */
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { peerEnv } from './directory.ts';
import { serveUwsPeer } from './uws-peer.ts';

const env = peerEnv();
const channels = `${env.redisPrefix}floor:`;
// One connection: postgres.js pipelines on it, so a room's appends (several in flight) commit in the order sent.
const sql = postgres(env.need('DATABASE_URL'), { max: 1, onnotice: () => {} });
const [pub, sub] = [new Redis(env.need('REDIS_URL')), new Redis(env.need('REDIS_URL'))];
// Both replicas start together: the tables are made under an advisory lock.
await sql.begin(async (tx) => {
  await tx`select pg_advisory_xact_lock(7340033)`;
  await tx`create table if not exists floor_heads (room text primary key, last_seq bigint not null)`;
  await tx`create table if not exists floor_events (room text not null, seq bigint not null, id uuid not null, sender text not null, cid text not null, ts timestamptz not null, body text not null, primary key (room, seq))`;
});
const APPEND = `with h as (
    insert into floor_heads as h (room, last_seq) values ($1, 1) on conflict (room) do update set last_seq = h.last_seq + 1 returning last_seq)
  insert into floor_events (room, seq, id, sender, cid, ts, body)
  select $1, h.last_seq, $2, $3, $4, to_timestamp($5::double precision / 1000), $6 from h returning seq`;

// Subscribed before listening, so that no event is published before this replica hears its room's.
await sub.psubscribe(`${channels}*`);
const app = serveUwsPeer({
  name: 'durable peer',
  env,
  head: () => 0, // every replica starts at 0 and resumes nothing: the floor keeps no history for sockets
  nextSeq: async (room, e) => Number((await sql.unsafe(APPEND, [room, e.id, e.from, e.cid, e.ts, e.body], { prepare: true }))[0]!.seq),
  // Every replica, this one included, hears it on its pattern subscription and fans it out there.
  fanout: (_app, room, frame) => void pub.publish(channels + room, frame),
});
sub.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, message: Buffer) =>
  app.publish(channel.toString('latin1', channels.length), message, false),
);
