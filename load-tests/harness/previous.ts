/**
 * The full run of 2026-11-30 12:07 (`--set fanoutRate=200 --cassandra --pg-stats`, same sizes
 * as a full run now except where noted), made with the previous generator: a Go-based load
 * tester, dropped for its licence. Kept so every report can put the servers' figures, and the
 * generator's own CPU, next to that run's.
 *
 * generatorMsPer1k: the previous generator's CPU in the send window (as measured now) per 1,000
 * deliveries received; generatorMsPerSocket (connect, reconnect): its CPU over the whole
 * scenario per socket; generatorMsPerCall (api): per tRPC call.
 */
export interface PreviousScenario {
  server: string;
  figures: Record<string, number>;
  generatorMsPer1k?: number;
  generatorMsPerSocket?: number;
  generatorMsPerCall?: number;
}

export const PREVIOUS_RUN = '2026-11-30 12:07';

/** By `<kind>/<scenario>`. */
export const PREVIOUS: Record<string, PreviousScenario> = {
  'hubbub/connect': { server: 'Hubbub', figures: { connections: 10_000, rssPerConnKiB: 15.33, serverCpuMsPerConn: 1.182, connectP50: 9160.3, connectP99: 10_350.8 }, generatorMsPerSocket: 1.779 },
  'hubbub/fanout': { server: 'Hubbub', figures: { deliveredPerS: 4993, deliveriesPerServerCpuS: 16_480, serverCpuPct: 30, latencyP50: 9.2, latencyP99: 31.43, latencyP999: 54.02 }, generatorMsPer1k: 89.1 },
  'hubbub/fanout+login': { server: 'Hubbub', figures: { deliveredPerS: 4993, deliveriesPerServerCpuS: 6878, serverCpuPct: 73, latencyP50: 9.42, latencyP99: 60.64, latencyP999: 101.43, loginP99: 408.26 }, generatorMsPer1k: 84.0 },
  'hubbub/api': { server: 'Hubbub', figures: { loginP50: 43, loginP99: 141.4, historyP50: 4.3, historyP99: 25.4 }, generatorMsPerCall: 1.002 },
  'hubbub/reconnect': { server: 'Hubbub', figures: { resumed: 10_000, firstMessageP50: 8464.3, firstMessageP99: 13_945, resumedP99: 13_952.3 }, generatorMsPerSocket: 4.492 },
  'hubbub/persist (PostgreSQL)': { server: 'Hubbub', figures: { ackedPerS: 4397, deliveredPerS: 8793, deliveriesPerServerCpuS: 12_145, serverCpuPct: 72, latencyP50: 204.75, latencyP99: 1111.32 }, generatorMsPer1k: 97.9 },
  'hubbub/persist (Cassandra)': { server: 'Hubbub (Cassandra store)', figures: { ackedPerS: 1831, deliveredPerS: 3663, deliveriesPerServerCpuS: 6708, serverCpuPct: 55 }, generatorMsPer1k: 106.8 },
  'hubbub/store path (PostgreSQL)': { server: 'Hubbub write path', figures: { appendsPerS: 19_634, writerCpuUsPerAppend: 21.1, appendP50: 98.1, appendP99: 201.29 } },
  'hubbub/store path (Cassandra)': { server: 'Hubbub write path', figures: { appendsPerS: 1363, writerCpuUsPerAppend: 278.1 } },
  'uws/connect': { server: 'bare uWS', figures: { connections: 10_000, rssPerConnKiB: 3.57, serverCpuMsPerConn: 0.29, connectP50: 2132.9, connectP99: 3550.8 }, generatorMsPerSocket: 0.625 },
  'uws/fanout': { server: 'bare uWS', figures: { deliveredPerS: 4987, deliveriesPerServerCpuS: 69_907, serverCpuPct: 7, latencyP50: 3.27, latencyP99: 11.34, latencyP999: 23.3 }, generatorMsPer1k: 83.4 },
  'uws/load-generator ceiling': { server: 'bare uWS', figures: { ackedPerS: 9886, deliveredPerS: 19_772, deliveriesPerServerCpuS: 59_288, serverCpuPct: 33 }, generatorMsPer1k: 82.1 },
  'ws/connect': { server: 'plain ws', figures: { connections: 10_000, rssPerConnKiB: 6.2, serverCpuMsPerConn: 0.672, connectP50: 2799.8, connectP99: 4656.1 }, generatorMsPerSocket: 0.669 },
  'ws/fanout': { server: 'plain ws', figures: { deliveredPerS: 4993, deliveriesPerServerCpuS: 44_451, serverCpuPct: 11, latencyP50: 2.81, latencyP99: 10.13, latencyP999: 20.79 }, generatorMsPer1k: 72.9 },
  'socketio/connect': { server: 'Socket.IO', figures: { connections: 10_000, rssPerConnKiB: 17.05, serverCpuMsPerConn: 1.269, connectP50: 5396.4, connectP99: 8590.6 }, generatorMsPerSocket: 0.822 },
  'socketio/fanout': { server: 'Socket.IO', figures: { deliveredPerS: 4993, deliveriesPerServerCpuS: 15_286, serverCpuPct: 33, latencyP50: 4.79, latencyP99: 24.23, latencyP999: 48.51 }, generatorMsPer1k: 92.7 },
};

/** conn-scale of that run: hub RSS against idle sockets on one hub process (baseline 186.3 MiB). */
export const PREVIOUS_CONN_SCALE = [
  { connections: 0, rssMiB: 186.3, rssPerConnKiB: NaN },
  { connections: 5000, rssMiB: 214.7, rssPerConnKiB: 5.82 },
  { connections: 10_000, rssMiB: 210.7, rssPerConnKiB: 2.5 },
  { connections: 15_000, rssMiB: 256.2, rssPerConnKiB: 4.77 },
  { connections: 19_800, rssMiB: 299.8, rssPerConnKiB: 5.87 },
];
