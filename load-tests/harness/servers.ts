/**
 * The servers under test as the generator sees them: Hubbub's replicas (the production build, as `npm start`, the
 * Dockerfile and k8s run it) and the four peers of peers/, each its own process on a free loopback port.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { buildServer } from '../../scripts/build.ts';
import { freePort } from '../../test/helpers/ports.ts';
import type { ServerKind } from '../gen/protocol.ts';
import { repoRoot } from './procs.ts';

export type { ServerKind };
/** A server process: `metricsPort` is where a hub serves /metrics; `logs` its last 200 lines of output (hubs log at warn). */
export type NodeServer = {
  name: string;
  port: number;
  metricsPort: number;
  pid: number;
  child: ChildProcess;
  logs: string[];
  stop(): Promise<void>;
};

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
  const e = o.entry;
  const group = typeof e !== 'string';
  const [cmd, ...args] =
    typeof e !== 'string' ? e : [process.execPath, ...(o.nodeArgs ?? []), ...(e.endsWith('.ts') ? ['--import', 'tsx'] : []), e];
  const ports = { PORT: String(port), METRICS_PORT: String(metricsPort), WORKERS_METRICS_PORT: String(metricsPort) };
  const env = { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', ...o.env, ...ports };
  const child = spawn(cmd!, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'], detached: group });
  const logs: string[] = [];
  for (const input of [child.stdout!, child.stderr!])
    createInterface({ input }).on('line', (line) => logs.push(line) > 200 && logs.shift());
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
  const answers = () =>
    fetch(ready).then(
      async (r) => (await r.arrayBuffer(), r.ok),
      () => false,
    ); // refused while it starts
  for (const deadline = Date.now() + 120_000; !(await answers()); await new Promise((r) => setTimeout(r, 100))) {
    if (gone())
      throw new Error(`${o.name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${logs.slice(-20).join('\n')}`);
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

/** A hub's Prometheus metrics (all, or the one named): the one place the bench reads them. */
export async function hubMetrics(hub: { port: number; metricsPort?: number }, name?: string): Promise<string> {
  return (await fetch(`http://127.0.0.1:${hub.metricsPort ?? hub.port}/metrics${name ? `?name=${name}` : ''}`)).text();
}
/** One sample's value from metrics text (NaN when absent). */
export const metricValue = (text: string, name: string) =>
  Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text)?.[1] ?? NaN);

/** A set of server processes under test: socket URLs one per process; `connections()` counts the sockets open across it. */
export type ServerSet = {
  kind: ServerKind;
  label: string;
  procs: NodeServer[];
  urls: string[];
  connections(): Promise<number>;
  stop(): Promise<void>;
};

function serverSet(kind: ServerKind, label: string, procs: NodeServer[]): ServerSet {
  // Hubbub: its hubbub_ws_connections gauge; the peers: /stats.
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
    ...{ kind, label, procs, urls: procs.map((p) => `ws://127.0.0.1:${p.port}${socket}`) },
    connections: async () => (await Promise.all(procs.map(count))).reduce((a, b) => a + b, 0),
    stop: async () => void (await Promise.all(procs.map((p) => p.stop()))),
  };
}

/** The bench's hub settings: limits raised, so that the workload, not the abuse guards, is measured. */
export const hubEnv = (o: { databaseUrl: string; redisUrl: string; redisPrefix: string; jwtSecret: string; dataDir: string }) => ({
  ...{ NODE_ENV: 'production', LOG_LEVEL: 'warn', DATABASE_URL: o.databaseUrl, REDIS_URL: o.redisUrl, REDIS_PREFIX: o.redisPrefix },
  ...{ JWT_SECRET: o.jwtSecret, DATA_DIR: o.dataDir, DATABASE_POOL_MAX: '20', WS_RATE_PER_S: '100000', WS_RATE_BURST: '100000' },
  ...{ WS_MAX_CONNECTIONS_PER_USER: '10000', LOGIN_MAX_PER_IP: '100000', LOGIN_MAX_PER_ACCOUNT: '1000' },
});
const letter = (i: number) => String.fromCharCode(97 + i);
const many = (n: number, start: (i: number) => Promise<NodeServer>) => Promise.all(Array.from({ length: n }, (_, i) => start(i)));

/** Hub replicas built from the current sources; `firstNodeArgs` for replica 0 (a profiler, an inspector). */
export async function startHubs(o: {
  replicas: number;
  env: Record<string, string>;
  label?: string;
  firstNodeArgs?: string[];
}): Promise<ServerSet> {
  await buildServer();
  const hubs = await many(o.replicas, (i) =>
    startNodeServer({
      ...{ name: `hub-${letter(i)}`, entry: 'dist/server/main.js', env: { ...o.env, REPLICA_ID: `bench-${letter(i)}` } },
      ...{ readyPath: '/health/ready', nodeArgs: i === 0 ? o.firstNodeArgs : [] },
    }),
  );
  return serverSet('hubbub', o.label ?? 'Hubbub', hubs);
}

const PEERS: Record<Exclude<ServerKind, 'hubbub'>, [file: string, label: string, replicas: number]> = {
  uws: ['uws-peer.ts', 'bare uWS (1 process)', 1],
  ws: ['ws-peer.ts', 'plain ws', 1],
  socketio: ['socketio-peer.ts', 'Socket.IO + redis-adapter', 2],
  floor: ['durable-peer.ts', 'durable floor: uWS + PostgreSQL + Redis (2 replicas)', 2],
};
/** A peer of peers/ (SEED_FILE, JWT_SECRET; Socket.IO and the floor REDIS_URL, the floor DATABASE_URL). */
export async function startPeer(kind: Exclude<ServerKind, 'hubbub'>, env: Record<string, string>): Promise<ServerSet> {
  const [file, label, replicas] = PEERS[kind];
  const entry = path.join('load-tests', 'peers', file);
  return serverSet(
    kind,
    label,
    await many(replicas, (i) => startNodeServer({ name: `${kind}-${letter(i)}`, entry, env, readyPath: '/stats' })),
  );
}
