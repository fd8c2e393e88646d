/**
 * Peer 1, plain `ws`: the way most Node chat servers start out. One process, rooms in memory with a per-room seq, fanout
 * as a loop calling `ws.send` on each socket of the room. To be fair to it, each event becomes a Buffer once per
 * message, not once per socket.
 */
import http from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { handlePeerFrame, peerEnv } from './directory.ts';

const { host, port, directory } = peerEnv();
const rooms = new Map<string, { seq: number; sockets: Set<WebSocket> }>();
const room = (id: string) => rooms.get(id) ?? rooms.set(id, { seq: 0, sockets: new Set() }).get(id)!;
let connections = 0;

const server = http.createServer((req, res) => {
  if (req.url !== '/stats') return void res.writeHead(404).end();
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ connections }));
});
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 });
server.on('upgrade', (req, socket, head) => {
  void directory.verify(/^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1]).then((user) => {
    if (!user) return void socket.end('HTTP/1.1 401 Unauthorized\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, user));
  });
});

function onConnection(ws: WebSocket, user: string) {
  connections++;
  const mine = directory.roomsOf(user);
  const convs: Record<string, number> = {};
  for (const r of mine.map(room)) r.sockets.add(ws);
  for (const id of mine) convs[id] = room(id).seq;
  ws.send(JSON.stringify({ type: 'ready', user: { id: user }, convs }));
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    handlePeerFrame(String(data), {
      ...{ user, convs, directory },
      nextSeq: (id) => ++room(id).seq,
      fanout: (id, frame) => {
        const bytes = Buffer.from(frame);
        for (const s of room(id).sockets) s.send(bytes, { binary: false });
      },
      reply: (frame) => ws.send(JSON.stringify(frame)),
    });
  });
  ws.on('close', () => {
    connections--;
    for (const id of mine) rooms.get(id)?.sockets.delete(ws);
  });
  ws.on('error', () => {}); // a socket reset by the client: its close event follows and does the bookkeeping
}

// A backlog as deep as net.core.somaxconn allows: a 10k-socket storm overflows Node's default of 511.
server.listen(port, host, 4096, () =>
  process.stdout.write(JSON.stringify({ msg: 'ws peer listening', port: (server.address() as { port: number }).port }) + '\n'),
);
process.on('SIGTERM', () => process.exit(0));
