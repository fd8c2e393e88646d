/** What the runner (gen/runner.ts) hands each generator process, and what comes back. */
import type { Proto } from './proto.ts';

export interface Target {
  url: string;
  token: string;
}

export interface ConnectJob {
  kind: 'connect';
  proto: Proto;
  sockets: Target[];
  connectTimeoutS: number;
  handshakeTimeoutMs: number;
}

export interface FanoutJob {
  kind: 'fanout';
  proto: Proto;
  rooms: { id: string; members: Target[] }[];
  /** rate: open loop at `rate` sends/s (this process's share); max: `window` sends in flight per room. */
  mode: 'rate' | 'max';
  rate: number;
  window: number;
  /** Every member in turn (chat), or only the first (the persistence test: one writer per room). */
  senders: 'rotate' | 'first';
  durationS: number;
  drainS: number;
  bodySize: number;
  runId: string;
  connectTimeoutS: number;
  handshakeTimeoutMs: number;
}

export interface ReconnectJob {
  kind: 'reconnect';
  proto: Proto;
  /** members[0]'s token also opens the room's sender socket, which stays up through the storm. */
  rooms: { id: string; members: Target[] }[];
  warm: number;
  missed: number;
  live: number;
  resumeTimeoutS: number;
  runId: string;
  connectTimeoutS: number;
  handshakeTimeoutMs: number;
}

export interface ApiJob {
  kind: 'api';
  bases: string[];
  loginRate: number;
  historyRate: number;
  durationS: number;
  password: string;
  logins: string[];
  histories: { conv: string; token: string }[];
  /** At most this many calls of each kind in flight; a due call beyond it is dropped (counted). */
  maxInFlight: { login: number; history: number };
}

export type Job = (ConnectJob | FanoutJob | ReconnectJob | ApiJob) & { worker: number; addresses: string[] };

/** Runner → generator. */
export type ToGen = { type: 'job'; job: Job } | { type: 'go'; name: string; at: number };

/** Generator → runner. */
export type FromGen =
  | { type: 'barrier'; name: string; info: Record<string, number> }
  | { type: 'log'; line: string }
  | { type: 'done'; report: GenReport };

export interface GenReport {
  worker: number;
  counters: Record<string, number>;
  /** Compressed HdrHistograms (µs), by metric name. */
  hists: Record<string, string>;
  /** process.cpuUsage over the measured window, and over the whole job, in seconds. */
  windowCpuS: number;
  totalCpuS: number;
  windowS: number;
  /** monitorEventLoopDelay over the measured window, ms. */
  eld: { p50: number; p99: number; max: number };
  /** Sockets that finished their handshake per 100 ms since the go (connect storm progress). */
  timeline?: number[];
}
