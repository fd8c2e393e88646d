/**
 * Peer 1: a plain `ws` chat server, the way most Node chat servers start out. One process,
 * rooms in memory, a per-room seq, and fanout as a loop over the room's sockets calling
 * `ws.send` on each. It speaks the subset of Hubbub's protocol the load generator uses (ready,
 * resume → resumed, send → ack + event to every member, ping → pong) with the same JSON
 * payloads, so the same generator drives it. To be fair to it, each event is stringified and
 * turned into a Buffer once per room, not once per socket.
 */
import http from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { Directory, handlePeerFrame, peerEnv } from './directory.ts';

const env = peerEnv();
const directory = new Directory(env.seedFile, env.secret);

interface Room {
  seq: number;
  sockets: Set<WebSocket>;
}
const rooms = new Map<string, Room>();
const room = (id: string) => {
  let r = rooms.get(id);
  if (!r) rooms.set(id, (r = { seq: 0, sockets: new Set() }));
  return r;
};
let connections = 0;

const server = http.createServer((req, res) => {
  if (req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ connections }));
    return;
  }
  res.writeHead(404).end();
});

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 });

server.on('upgrade', (req, socket, head) => {
  const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
  void directory.verify(token).then((user) => {
    if (!user) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, user));
  });
});

function onConnection(ws: WebSocket, user: string) {
  connections++;
  const mine = directory.roomsOf(user);
  const convs: Record<string, number> = {};
  for (const id of mine) {
    const r = room(id);
    r.sockets.add(ws);
    convs[id] = r.seq;
  }
  ws.send(JSON.stringify({ type: 'ready', user: { id: user }, convs }));
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    handlePeerFrame(String(data), {
      user,
      convs,
      directory,
      nextSeq: (id) => ++room(id).seq,
      // To be fair to ws, the event becomes a Buffer once per message, not once per socket.
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
  ws.on('error', () => {});
}

// Backlog as deep as net.core.somaxconn allows: a 10k-socket storm overflows Node's default 511.
server.listen(env.port, env.host, 4096, () => {
  const addr = server.address();
  process.stdout.write(JSON.stringify({ msg: 'ws peer listening', port: typeof addr === 'object' && addr ? addr.port : env.port }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
