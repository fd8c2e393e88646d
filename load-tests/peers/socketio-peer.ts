/**
 * Peer 2: Socket.IO 4 with @socket.io/redis-adapter, two replicas on one Redis, the usual way to scale Socket.IO. Auth is
 * a middleware checking the token of the CONNECT packet; a socket joins its rooms; `send` (with an ack) broadcasts the
 * event with `io.to(room).emit`, which the adapter relays to the other replica. Frames carry Hubbub's JSON objects in
 * Socket.IO's framing: the server emits everything as event `f`. There is no per-room seq (no shared counter across
 * replicas), so the generator checks per-sender order for this peer.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { peerEnv } from './directory.ts';

const env = peerEnv();
const { directory } = env;
const server = http.createServer((req, res) => {
  if (req.url === '/stats')
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ connections: io.engine.clientsCount }));
  else if (!req.url?.startsWith('/socket.io')) res.writeHead(404).end();
});
const io = new Server(server, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  httpCompression: false,
  maxHttpBufferSize: 64 * 1024,
});
const pub = new Redis(env.need('REDIS_URL'));
const sub = pub.duplicate();
io.adapter(createAdapter(pub, sub, { key: env.redisPrefix }));
io.use((socket, next) => {
  void directory.verify((socket.handshake.auth as { token?: unknown }).token).then((user) => {
    if (!user) return next(new Error('unauthorized'));
    socket.data.user = user;
    next();
  });
});

type Frame = { ref?: string; conv?: string; cid?: string; body?: string };
type Ack = (reply: unknown) => void;
io.on('connection', (socket) => {
  const user = socket.data.user as string;
  const mine = directory.roomsOf(user);
  void socket.join(mine);
  const convs = Object.fromEntries(mine.map((r) => [r, 0]));
  socket.emit('f', { type: 'ready', user: { id: user }, convs });
  socket.on('send', (f: Frame, ack?: Ack) => {
    if (typeof f?.conv !== 'string' || typeof f.body !== 'string' || typeof f.cid !== 'string' || !directory.isMember(f.conv, user)) {
      return ack?.({ type: 'error', ref: f?.ref, code: 'FORBIDDEN', message: 'not a member' });
    }
    const [id, ts] = [randomUUID(), Date.now()];
    io.to(f.conv).emit('f', { body: f.body, type: 'event', conv: f.conv, kind: 'message', id, from: user, ts, cid: f.cid });
    ack?.({ type: 'ack', conv: f.conv, cid: f.cid, id, ts, ref: f.ref });
  });
  socket.on('resume', (f: Frame, ack?: Ack) => ack?.({ type: 'resumed', ref: f?.ref, convs, cursors: {} }));
  socket.on('ping', (f: Frame, ack?: Ack) => ack?.({ type: 'pong', ref: f?.ref }));
});

// A backlog as deep as net.core.somaxconn allows: a 10k-socket storm overflows Node's default of 511.
server.listen(env.port, env.host, 4096, () =>
  process.stdout.write(JSON.stringify({ msg: 'socket.io peer listening', port: (server.address() as { port: number }).port }) + '\n'),
);
process.on('SIGTERM', () => (pub.disconnect(), sub.disconnect(), process.exit(0)));
