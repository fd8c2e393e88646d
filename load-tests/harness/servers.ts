/**
 * The servers under test as the generator sees them: Hubbub's replicas (the production build, as `npm start`, the
 * Dockerfile and k8s run it) and the four peers of peers/, each its own process on a free loopback port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { buildServer } from '../../scripts/build.ts';
import { freePort } from '../../test/helpers/ports.ts';
import type { ServerKind } from '../gen/protocol.ts';
import { repoRoot } from './procs.ts';

export type { ServerKind };

export interface NodeServer {
  name: string;
  port: number;
  /** Where a hub serves /metrics (the peers ignore it). */
  metricsPort: number;
  pid: number;
  child: ChildProcess;
  /** Its last 200 lines of output (hubs log at warn). */
  logs: string[];
  stop(): Promise<void>;
}

/**
 * Starts a server process on a free port: a TypeScript entry through tsx, built JavaScript, or a whole command (`npm
 * start`: in its own process group, as from a terminal, so that a stop reaches npm and the hub together). Its metrics
 * (METRICS_PORT, and WORKERS_METRICS_PORT for the worker process) go to a second free port. Ready once `readyPath`
 * answers on its port, or with `readyOnMetrics` on the metrics port.
 */
export async function startNodeServer(o: {
  name: string;
  entry: string | string[];
  env: Record<string, string>;
  readyPath: string;
  readyOnMetrics?: boolean;
  nodeArgs?: string[];
}): Promise<NodeServer> {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const loader = typeof o.entry === 'string' && o.entry.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const [cmd, ...args] = typeof o.entry === 'string' ? [process.execPath, ...(o.nodeArgs ?? []), ...loader, o.entry] : o.entry;
  const ports = { PORT: String(port), METRICS_PORT: String(metricsPort), WORKERS_METRICS_PORT: String(metricsPort) };
  const group = typeof o.entry !== 'string';
  const child = spawn(cmd!, args, {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', ...o.env, ...ports },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: group,
  });
  const logs: string[] = [];
  const keep = (line: string) => logs.push(line) > 200 && logs.shift();
  createInterface({ input: child.stdout! }).on('line', keep);
  createInterface({ input: child.stderr! }).on('line', keep);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const signal = (sig: NodeJS.Signals) => {
    try {
      if (group) process.kill(-child.pid!, sig);
      else child.kill(sig);
    } catch {
      // the process (group) is gone already
    }
  };
  const kill = () => signal('SIGKILL');
  process.on('exit', kill);
  const ready = `http://127.0.0.1:${o.readyOnMetrics ? metricsPort : port}${o.readyPath}`;
  for (const deadline = Date.now() + 120_000; ; await new Promise((r) => setTimeout(r, 100))) {
    if (gone())
      throw new Error(`${o.name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${logs.slice(-20).join('\n')}`);
    // Refused while it starts: asked again until the deadline.
    if (
      await fetch(ready).then(
        async (r) => (await r.arrayBuffer(), r.ok),
        () => false,
      )
    )
      break;
    if (Date.now() > deadline) throw (kill(), new Error(`${o.name} not ready after 120 s:\n${logs.slice(-20).join('\n')}`));
  }
  const stop = async () => {
    process.off('exit', kill);
    if (gone()) return;
    signal('SIGTERM');
    const t = setTimeout(kill, 15_000);
    await exited;
    clearTimeout(t);
  };
  return { name: o.name, port, metricsPort, pid: child.pid!, child, logs, stop };
}

/**
 * A hub's Prometheus metrics (all, or the one named): the one place the bench reads them, so a change of where a hub
 * serves them is made here.
 */
export async function hubMetrics(hub: { port: number; metricsPort?: number }, name?: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${hub.metricsPort ?? hub.port}/metrics${name ? `?name=${name}` : ''}`);
  return res.text();
}
/** One sample's value from metrics text (NaN when absent). */
export const metricValue = (text: string, name: string) =>
  Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text)?.[1] ?? NaN);

/** A set of server processes under test. */
export interface ServerSet {
  kind: ServerKind;
  label: string;
  procs: NodeServer[];
  /** Socket URLs, one per process. */
  urls: string[];
  /** Sockets open across the set (Hubbub: its hubbub_ws_connections gauge; the peers: /stats). */
  connections(): Promise<number>;
  stop(): Promise<void>;
}

function serverSet(kind: ServerKind, label: string, procs: NodeServer[]): ServerSet {
  const count = async (p: NodeServer) => {
    try {
      if (kind === 'hubbub') return metricValue(await hubMetrics(p, 'hubbub_ws_connections'), 'hubbub_ws_connections') || 0;
      return ((await (await fetch(`http://127.0.0.1:${p.port}/stats`)).json()) as { connections: number }).connections;
    } catch {
      return 0; // not answering (stopping, or busy past the fetch's patience): counted as holding none
    }
  };
  const socket = kind === 'socketio' ? '/socket.io/?EIO=4&transport=websocket' : '/ws';
  return {
    kind,
    label,
    procs,
    urls: procs.map((p) => `ws://127.0.0.1:${p.port}${socket}`),
    connections: async () => (await Promise.all(procs.map(count))).reduce((a, b) => a + b, 0),
    stop: async () => void (await Promise.all(procs.map((p) => p.stop()))),
  };
}

/** The bench's hub settings: limits raised, so that the workload, not the abuse guards, is measured. */
export const hubEnv = (o: { databaseUrl: string; redisUrl: string; redisPrefix: string; jwtSecret: string; dataDir: string }) => ({
  NODE_ENV: 'production',
  LOG_LEVEL: 'warn',
  DATABASE_URL: o.databaseUrl,
  REDIS_URL: o.redisUrl,
  REDIS_PREFIX: o.redisPrefix,
  JWT_SECRET: o.jwtSecret,
  DATA_DIR: o.dataDir,
  DATABASE_POOL_MAX: '20',
  WS_RATE_PER_S: '100000',
  WS_RATE_BURST: '100000',
  WS_MAX_CONNECTIONS_PER_USER: '10000',
  LOGIN_MAX_PER_IP: '100000',
  LOGIN_MAX_PER_ACCOUNT: '1000',
});

const letter = (i: number) => String.fromCharCode(97 + i);

/** Hub replicas built from the current sources; `nodeArgs` of replica 0 (a profiler, an inspector) and of every replica. */
export async function startHubs(o: {
  replicas: number;
  env: Record<string, string>;
  label?: string;
  firstNodeArgs?: string[];
}): Promise<ServerSet> {
  await buildServer();
  const start = (i: number) =>
    startNodeServer({
      name: `hub-${letter(i)}`,
      entry: 'dist/server/main.js',
      env: { ...o.env, REPLICA_ID: `bench-${letter(i)}` },
      readyPath: '/health/ready',
      nodeArgs: i === 0 ? o.firstNodeArgs : [],
    });
  return serverSet('hubbub', o.label ?? 'Hubbub', await Promise.all(Array.from({ length: o.replicas }, (_, i) => start(i))));
}

const PEERS: Record<Exclude<ServerKind, 'hubbub'>, { file: string; label: string; replicas: number }> = {
  uws: { file: 'uws-peer.ts', label: 'bare uWS (1 process)', replicas: 1 },
  ws: { file: 'ws-peer.ts', label: 'plain ws', replicas: 1 },
  socketio: { file: 'socketio-peer.ts', label: 'Socket.IO + redis-adapter', replicas: 2 },
  floor: { file: 'durable-peer.ts', label: 'durable floor: uWS + PostgreSQL + Redis (2 replicas)', replicas: 2 },
};

/** A peer of peers/ (SEED_FILE, JWT_SECRET; Socket.IO and the floor REDIS_URL, the floor DATABASE_URL). */
export async function startPeer(kind: Exclude<ServerKind, 'hubbub'>, env: Record<string, string>): Promise<ServerSet> {
  const p = PEERS[kind];
  const start = (i: number) =>
    startNodeServer({ name: `${kind}-${letter(i)}`, entry: path.join('load-tests', 'peers', p.file), env, readyPath: '/stats' });
  return serverSet(kind, p.label, await Promise.all(Array.from({ length: p.replicas }, (_, i) => start(i))));
}
