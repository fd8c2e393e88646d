/**
 * Peer 0: a bare uWebSockets.js chat server, the least a uWS-based server can do for this
 * workload. One process, rooms in memory, a per-room seq, and fanout through uWS's native
 * pub/sub: each socket subscribes to its rooms' topics when it opens, and each event is
 * stringified once and handed to `app.publish`, which copies it once into the topic tree and
 * writes it to every subscriber in C++. It speaks the same protocol subset as ws-peer.ts
 * (ready, resume → resumed, send → ack + event to every member, ping → pong) with the same JSON
 * payloads and the same token check, so the same load generator drives it. Its deliveries per CPU
 * second are the ceiling for any uWS-based server (Hubbub included) on the same box.
 */
import { Directory, peerEnv } from './directory.ts';
import { serveUwsPeer } from './uws-app.ts';

const env = peerEnv();
const seqs = new Map<string, number>();

serveUwsPeer({
  name: 'uws peer',
  env,
  directory: new Directory(env.seedFile, env.secret),
  head: (room) => seqs.get(room) ?? 0,
  nextSeq: (room) => {
    const seq = (seqs.get(room) ?? 0) + 1;
    seqs.set(room, seq);
    return seq;
  },
  // Encoded once; uWS writes the same bytes to every subscriber of the room, the sender
  // included (app.publish, unlike ws.publish, does not skip the calling socket). uWS sends a
  // subscriber's pending published messages before a direct send, so the sender gets its
  // event before the ack, as from the ws peer.
  fanout: (app, room, frame) => void app.publish(room, frame, false),
});
