/**
 * What the two uWebSockets.js peers share: the app with `/stats`, the socket route (token at
 * the upgrade, each socket subscribed to its rooms' topics, `ready`, then handlePeerFrame), and
 * the listen. They differ only in where a `send`'s seq comes from and how its event travels:
 * uws-peer.ts keeps seqs in memory and publishes in process; durable-peer.ts stores the event
 * and publishes through Redis.
 */
import type { TemplatedApp, us_socket } from 'uWebSockets.js';
import { uws } from '../../server/src/uws.ts';
import { handlePeerFrame, peerEnv, type Directory, type PeerEvent } from './directory.ts';

interface UserData {
  user: string;
  rooms: string[];
  /** Each room's seq when the socket opened (`ready` and `resumed` send the same). */
  convs: Record<string, number>;
}

export function serveUwsPeer(o: {
  /** For the `listening` line and errors. */
  name: string;
  env: ReturnType<typeof peerEnv>;
  directory: Directory;
  /** A room's seq for `ready`. */
  head(room: string): number;
  nextSeq(room: string, e: PeerEvent): number | Promise<number>;
  fanout(app: TemplatedApp, room: string, frame: string): void;
}): TemplatedApp {
  const { env, directory } = o;
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
        data.convs[id] = o.head(id);
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
        nextSeq: o.nextSeq,
        fanout: (room, frame) => o.fanout(app, room, frame),
        reply: (frame) => {
          // A reply after a store write may find the socket closed meanwhile.
          try {
            ws.send(JSON.stringify(frame), false);
          } catch {}
        },
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
      process.stderr.write(`${o.name}: cannot listen on ${env.host}:${env.port}\n`);
      process.exit(1);
    }
    process.stdout.write(JSON.stringify({ msg: `${o.name} listening`, port: uws.us_socket_local_port(ls as unknown as us_socket) }) + '\n');
  });
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
  return app;
}
