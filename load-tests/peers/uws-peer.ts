/**
 * Peer 0, bare uWebSockets.js: the least a uWS-based server can do for this workload, and so the ceiling of any of them
 * (Hubbub included) on the same box. One process, rooms in memory with a per-room seq; each socket subscribes to its
 * rooms' topics when it opens, and each event is stringified once and handed to `app.publish`, which writes it to every
 * subscriber in C++. serveUwsPeer is the app the durable floor (durable-peer.ts) shares: `/stats`, the token check at
 * the upgrade, room topics, `ready`, the frames of handlePeerFrame, the listen.
 */
import { fileURLToPath } from 'node:url';
import type { TemplatedApp, us_socket } from 'uWebSockets.js';
import { uws } from '../../server/src/uws.ts';
import { handlePeerFrame, peerEnv, type PeerEvent } from './directory.ts';

export function serveUwsPeer(o: {
  name: string;
  env: ReturnType<typeof peerEnv>;
  /** A room's seq for `ready`. */
  head(room: string): number;
  nextSeq(room: string, e: PeerEvent): number | Promise<number>;
  fanout(app: TemplatedApp, room: string, frame: string): void;
}): TemplatedApp {
  const { host, port, directory } = o.env;
  let connections = 0;
  const app = uws.App();
  app.get('/stats', (res) => void res.writeHeader('content-type', 'application/json').end(JSON.stringify({ connections })));
  app.any('/*', (res) => void res.writeStatus('404 Not Found').end());
  app.ws<{ user: string; rooms: string[]; convs: Record<string, number> }>('/ws', {
    compression: uws.DISABLED,
    maxPayloadLength: 64 * 1024,
    // No heartbeat, like the ws peer: the peers measure fanout, not liveness.
    idleTimeout: 0,
    // uWS drops a send to a socket with more than this queued, and the generator counts every drop as lost; the ws peer
    // queues without bound, so the limit is set far above anything this workload queues.
    maxBackpressure: 64 * 1024 * 1024,
    upgrade: (res, req, context) => {
      // Everything needed from req is copied out before the await: req is gone after this call.
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol').split(',')[0]!.trim();
      const extensions = req.getHeader('sec-websocket-extensions');
      const token = /^Bearer (\S+)$/.exec(req.getHeader('authorization'))?.[1];
      let aborted = false;
      res.onAborted(() => (aborted = true));
      void directory.verify(token).then((user) => {
        if (aborted) return;
        res.cork(() => {
          if (!user) res.writeStatus('401 Unauthorized').end();
          else res.upgrade({ user, rooms: directory.roomsOf(user), convs: {} }, key, protocol, extensions, context);
        });
      });
    },
    open: (ws) => {
      connections++;
      const data = ws.getUserData();
      for (const id of data.rooms) ws.subscribe(id), (data.convs[id] = o.head(id));
      ws.send(JSON.stringify({ type: 'ready', user: { id: data.user }, convs: data.convs }));
    },
    message: (ws, message, isBinary) => {
      if (isBinary) return;
      const { user, convs } = ws.getUserData();
      // The ArrayBuffer is valid only during this call: copied out as text.
      handlePeerFrame(Buffer.from(message).toString('utf8'), {
        ...{ user, convs, directory, nextSeq: o.nextSeq },
        fanout: (room, frame) => o.fanout(app, room, frame),
        reply: (frame) => {
          try {
            ws.send(JSON.stringify(frame), false);
          } catch {
            // a reply after a store write may find the socket closed meanwhile: nobody to tell
          }
        },
      });
    },
    // uWS unsubscribes a closed socket from its topics itself.
    close: () => void connections--,
  });
  app.listen(host, port, (ls) => {
    if (!ls) throw new Error(`${o.name}: cannot listen on ${host}:${port}`);
    process.stdout.write(JSON.stringify({ msg: `${o.name} listening`, port: uws.us_socket_local_port(ls as unknown as us_socket) }) + '\n');
  });
  process.on('SIGTERM', () => process.exit(0));
  return app;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const seqs = new Map<string, number>();
  serveUwsPeer({
    name: 'uws peer',
    env: peerEnv(),
    head: (room) => seqs.get(room) ?? 0,
    nextSeq: (room) => seqs.set(room, (seqs.get(room) ?? 0) + 1).get(room)!,
    // Encoded once; uWS writes the same bytes to every subscriber, the sender included (app.publish, unlike ws.publish,
    // skips no socket), and sends a subscriber's published messages before a direct send: the event before the ack.
    fanout: (app, room, frame) => void app.publish(room, frame, false),
  });
}
