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
import type { us_socket } from 'uWebSockets.js';
import { uws } from '../../server/src/uws.ts';
import { Directory, handlePeerFrame, peerEnv } from './directory.ts';

const env = peerEnv();
const directory = new Directory(env.seedFile, env.secret);

interface UserData {
  user: string;
  rooms: string[];
  /** Each room's seq when the socket opened (the ws peer's `ready` and `resumed` send the same). */
  convs: Record<string, number>;
}

const seqs = new Map<string, number>();
let connections = 0;

const app = uws.App();

app.get('/stats', (res) => {
  res.writeHeader('content-type', 'application/json').end(JSON.stringify({ connections }));
});
app.any('/*', (res) => {
  res.writeStatus('404 Not Found').end();
});

app.ws<UserData>('/ws', {
  compression: uws.DISABLED,
  maxPayloadLength: 64 * 1024,
  // No heartbeat, like the ws peer (which has none either): the peer measures fanout, not liveness.
  idleTimeout: 0,
  // uWS drops a send (and a published message) to a socket with more than maxBackpressure bytes
  // queued. The ws peer queues without bound, and the generator's order checks count every drop as lost,
  // so the limit is set far above anything this workload queues rather than paced.
  maxBackpressure: 64 * 1024 * 1024,

  upgrade: (res, req, context) => {
    // Everything needed from req is copied out before the await: req is gone after this call.
    const key = req.getHeader('sec-websocket-key');
    // Like ws without handleProtocols: the first offered subprotocol, if any (the load generator offers none).
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
      data.convs[id] = seqs.get(id) ?? 0;
    }
    ws.send(JSON.stringify({ type: 'ready', user: { id: data.user }, convs: data.convs }));
  },

  message: (ws, message, isBinary) => {
    if (isBinary) return;
    const { user, convs } = ws.getUserData();
    // The ArrayBuffer is only valid during this call; toString copies it out.
    handlePeerFrame(Buffer.from(message).toString('utf8'), {
      user,
      convs,
      directory,
      nextSeq: (room) => {
        const seq = (seqs.get(room) ?? 0) + 1;
        seqs.set(room, seq);
        return seq;
      },
      // Encoded once; uWS writes the same bytes to every subscriber of the room, the sender
      // included (app.publish, unlike ws.publish, does not skip the calling socket). uWS sends a
      // subscriber's pending published messages before a direct send, so the sender gets its
      // event before the ack, as from the ws peer.
      fanout: (room, frame) => void app.publish(room, frame, false),
      reply: (frame) => void ws.send(JSON.stringify(frame), false),
    });
  },

  // uWS unsubscribes a closed socket from every topic itself.
  close: () => {
    connections--;
  },
});

// uSockets listens with a fixed backlog of 512 (the hub too), unlike the ws peer's 4096.
app.listen(env.host, env.port, (ls) => {
  if (!ls) {
    process.stderr.write(`uws peer: cannot listen on ${env.host}:${env.port}\n`);
    process.exit(1);
  }
  process.stdout.write(JSON.stringify({ msg: 'uws peer listening', port: uws.us_socket_local_port(ls as unknown as us_socket) }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
