import path from 'node:path';
import { buildServer } from '../../scripts/build.ts';
import { startNodeServer, type NodeServer } from './procs.ts';

export type ServerKind = 'hubbub' | 'uws' | 'ws' | 'socketio' | 'floor';

/** A set of server processes under test, as the load generator sees them. */
export interface ServerSet {
  kind: ServerKind;
  label: string;
  procs: NodeServer[];
  /** Socket URLs, comma separated. */
  targets: string;
  /** Open sockets across the set (Hubbub: the hubbub_ws_connections gauge; peers: /stats). */
  connections(): Promise<number>;
  stop(): Promise<void>;
}

async function count(kind: ServerKind, p: NodeServer): Promise<number> {
  try {
    if (kind === 'hubbub') {
      const text = await (await fetch(`http://127.0.0.1:${p.metricsPort}/metrics?name=hubbub_ws_connections`)).text();
      return Number(/^hubbub_ws_connections (\d+)/m.exec(text)?.[1] ?? 0);
    }
    return ((await (await fetch(`http://127.0.0.1:${p.port}/stats`)).json()) as { connections: number }).connections;
  } catch {
    return 0;
  }
}

function set(kind: ServerKind, label: string, procs: NodeServer[]): ServerSet {
  const url = (p: NodeServer) =>
    kind === 'socketio' ? `ws://127.0.0.1:${p.port}/socket.io/?EIO=4&transport=websocket` : `ws://127.0.0.1:${p.port}/ws`;
  return {
    kind,
    label,
    procs,
    targets: procs.map(url).join(','),
    async connections() {
      const n = await Promise.all(procs.map((p) => count(kind, p)));
      return n.reduce((a, b) => a + b, 0);
    },
    async stop() {
      await Promise.all(procs.map((p) => p.stop()));
    },
  };
}

/** The bench's hub settings: limits raised so the workload, not the abuse guards, is measured. */
export function hubEnv(base: { databaseUrl: string; redisUrl: string; redisPrefix: string; jwtSecret: string; dataDir: string }) {
  return {
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    DATABASE_URL: base.databaseUrl,
    REDIS_URL: base.redisUrl,
    REDIS_PREFIX: base.redisPrefix,
    JWT_SECRET: base.jwtSecret,
    DATA_DIR: base.dataDir,
    DATABASE_POOL_MAX: '20',
    WS_RATE_PER_S: '100000',
    WS_RATE_BURST: '100000',
    WS_MAX_CONNECTIONS_PER_USER: '10000',
    LOGIN_MAX_PER_IP: '100000',
    LOGIN_MAX_PER_ACCOUNT: '1000',
  };
}

export async function startHubs(opts: {
  replicas: number;
  env: Record<string, string>;
  /** Replica indexes to run with --cpu-prof (profiles land in profileDir when they exit). */
  profile?: { replicas: number[]; dir: string };
  /** Extra node flags for replica 0 (e.g. --perf-basic-prof-only-functions for `perf record`). */
  firstNodeArgs?: string[];
  label?: string;
}): Promise<ServerSet> {
  // The hubs run the production build (as `npm start`, the Dockerfile and k8s do), built from the current sources.
  await buildServer();
  const procs = await Promise.all(
    Array.from({ length: opts.replicas }, (_, i) =>
      startNodeServer({
        name: `hub-${String.fromCharCode(97 + i)}`,
        entry: 'dist/server/main.js',
        env: { ...opts.env, REPLICA_ID: `bench-${String.fromCharCode(97 + i)}` },
        readyPath: '/health/ready',
        nodeArgs: [
          ...(opts.profile?.replicas.includes(i) ? ['--cpu-prof', `--cpu-prof-dir=${opts.profile.dir}`] : []),
          ...(i === 0 ? opts.firstNodeArgs ?? [] : []),
        ],
      }),
    ),
  );
  return set('hubbub', opts.label ?? 'Hubbub', procs);
}

export async function startUwsPeer(env: Record<string, string>): Promise<ServerSet> {
  const p = await startNodeServer({ name: 'uws-peer', entry: path.join('load-tests', 'peers', 'uws-peer.ts'), env, readyPath: '/stats' });
  return set('uws', 'bare uWS (1 process)', [p]);
}

export async function startWsPeer(env: Record<string, string>): Promise<ServerSet> {
  const p = await startNodeServer({ name: 'ws-peer', entry: path.join('load-tests', 'peers', 'ws-peer.ts'), env, readyPath: '/stats' });
  return set('ws', 'plain ws', [p]);
}

/** `n` replicas of a peer, named `<prefix>-a`, `<prefix>-b`, …, on one environment. */
function startReplicas(prefix: string, entry: string, n: number, env: Record<string, string>): Promise<NodeServer[]> {
  return Promise.all(
    Array.from({ length: n }, (_, i) =>
      startNodeServer({ name: `${prefix}-${String.fromCharCode(97 + i)}`, entry: path.join('load-tests', 'peers', entry), env, readyPath: '/stats' }),
    ),
  );
}

export async function startSocketIoPeers(replicas: number, env: Record<string, string>): Promise<ServerSet> {
  return set('socketio', 'Socket.IO + redis-adapter', await startReplicas('sio', 'socketio-peer.ts', replicas, env));
}

/** The durable floor (peers/durable-peer.ts): uWS + postgres.js + ioredis doing only what durability and replication need. */
export async function startDurablePeers(replicas: number, env: Record<string, string>): Promise<ServerSet> {
  return set('floor', 'durable floor: uWS + PostgreSQL + Redis (2 replicas)', await startReplicas('floor', 'durable-peer.ts', replicas, env));
}
