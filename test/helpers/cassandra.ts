// Test helper: a real, throwaway, single-node Apache Cassandra on loopback.
//
// The jars come from Maven Central via scripts/fetch-cassandra.sh (run here on
// demand when they are missing; CI pre-fetches with `bash scripts/fetch-cassandra.sh`).
// Each startCassandra() gets a fresh temp dir (config, data, commitlog, ...),
// free loopback ports, and a JVM that is killed on stop() or when this process exits.
//
// Start-up takes ~3-4 s on the 2-core CI machine; the JVM stays around 0.5 GB resident.
//
// Env knobs:
//   CASSANDRA_CONTACT_POINTS  "host:port,host:port": withCassandra() uses that cluster instead
//   CASSANDRA_LOCAL_DC        local data center for CASSANDRA_CONTACT_POINTS (default datacenter1)
//   CASSANDRA_VERSION         overrides the version pinned in scripts/fetch-cassandra.sh
//   CASSANDRA_HEAP            heap size, e.g. "768m" (default: -Xms512m -Xmx1g)
//   CASSANDRA_FULL_JIT=1      use C2 too (default is C1 only: faster start, less CPU; slower under load)
//   CASSANDRA_JVM_OPTS        extra JVM flags, whitespace separated, appended last
//   CASSANDRA_ALLOW_MLOCK=1   let a root-run JVM mlockall its memory (default: prevented, see below)
//   CASSANDRA_JAVA            java binary (default: $JAVA_HOME/bin/java, else `java` on PATH)
//   CASSANDRA_DEBUG=1         echo the JVM's output to stderr
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import cassandra from 'cassandra-driver';

export interface CassandraHandle {
  contactPoints: string[];
  localDataCenter: string;
  port: number;
  stop(): Promise<void>;
}

export interface StartCassandraOptions {
  /** Receives every line the JVM prints (Cassandra logs at INFO to stdout). */
  log?: (line: string) => void;
}

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const FETCH_SCRIPT = path.join(REPO_ROOT, 'scripts', 'fetch-cassandra.sh');
const LIB_DIR = path.join(REPO_ROOT, '.cache', 'cassandra', 'lib');
const HOST = '127.0.0.1';
const LOCAL_DC = 'datacenter1'; // what SimpleSnitch reports
const START_TIMEOUT_MS = 180_000;
const POLL_INTERVAL_MS = 250;
const STOP_GRACE_MS = 10_000;
const TAIL_LINES = 80;

// Same JPMS flags as Cassandra 5.0's conf/jvm17-server.options.
const JVM17_FLAGS = [
  '-Djdk.attach.allowAttachSelf=true',
  '--add-exports',
  'java.base/jdk.internal.misc=ALL-UNNAMED',
  '--add-exports',
  'java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED',
  '--add-exports',
  'java.rmi/sun.rmi.registry=ALL-UNNAMED',
  '--add-exports',
  'java.rmi/sun.rmi.server=ALL-UNNAMED',
  '--add-exports',
  'java.sql/java.sql=ALL-UNNAMED',
  '--add-exports',
  'java.base/java.lang.ref=ALL-UNNAMED',
  '--add-exports',
  'jdk.unsupported/sun.misc=ALL-UNNAMED',
  '--add-exports',
  'jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED',
  '--add-exports',
  'jdk.attach/sun.tools.attach=ALL-UNNAMED',
  '--add-opens',
  'java.base/java.lang.module=ALL-UNNAMED',
  '--add-opens',
  'java.base/jdk.internal.loader=ALL-UNNAMED',
  '--add-opens',
  'java.base/jdk.internal.ref=ALL-UNNAMED',
  '--add-opens',
  'java.base/jdk.internal.reflect=ALL-UNNAMED',
  '--add-opens',
  'java.base/jdk.internal.math=ALL-UNNAMED',
  '--add-opens',
  'java.base/jdk.internal.module=ALL-UNNAMED',
  '--add-opens',
  'java.base/jdk.internal.util.jar=ALL-UNNAMED',
  '--add-opens',
  'jdk.management/com.sun.management.internal=ALL-UNNAMED',
  '--add-opens',
  'java.base/sun.nio.ch=ALL-UNNAMED',
  '--add-opens',
  'java.base/java.io=ALL-UNNAMED',
  '--add-opens',
  'java.base/java.lang.reflect=ALL-UNNAMED',
  '--add-opens',
  'jdk.compiler/com.sun.tools.javac=ALL-UNNAMED',
  '--add-opens',
  'java.base/java.lang=ALL-UNNAMED',
  '--add-opens',
  'java.base/java.util=ALL-UNNAMED',
  '-Dio.netty.tryReflectionSetAccessible=true',
  '-Dio.netty.allocator.useCacheForAllThreads=true',
  '-Dio.netty.allocator.maxOrder=11',
];

// ---------------------------------------------------------------------------
// Process-exit safety net: every JVM we started is SIGKILLed when node exits.
const liveJvms = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of liveJvms) {
      try {
        child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

/**
 * A tiny detached watchdog that SIGKILLs the JVM and removes its temp dir when our end of
 * its stdin pipe closes, i.e. when this node process dies in any way (even by SIGKILL, where
 * the 'exit' hook never runs) or stop() closes it. It does not keep the event loop alive.
 */
const WATCHDOG_SH = `
cat >/dev/null
kill -KILL "$1" 2>/dev/null
i=0
while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
rm -rf "$2"
`;
function spawnWatchdog(jvmPid: number, dir: string): ChildProcess | undefined {
  try {
    const dog = spawn('/bin/sh', ['-c', WATCHDOG_SH, 'cassandra-watchdog', String(jvmPid), dir], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
    });
    dog.on('error', () => {});
    dog.stdin?.on('error', () => {});
    dog.unref();
    (dog.stdin as unknown as net.Socket | null)?.unref?.();
    return dog;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------

/** The version the fetch script pins (its `CASSANDRA_VERSION:-x.y.z` default), or $CASSANDRA_VERSION. */
function wantedVersion(): string {
  if (process.env.CASSANDRA_VERSION) return process.env.CASSANDRA_VERSION;
  const m = readFileSync(FETCH_SCRIPT, 'utf8').match(/CASSANDRA_VERSION:-([^}\s]+)\}/);
  if (!m?.[1]) throw new Error(`cannot find the pinned CASSANDRA_VERSION in ${FETCH_SCRIPT}`);
  return m[1];
}

function hasJars(): boolean {
  const v = wantedVersion();
  return existsSync(path.join(LIB_DIR, `.complete-${v}`)) && existsSync(path.join(LIB_DIR, `cassandra-all-${v}.jar`));
}

function ensureJars(log: (line: string) => void): string[] {
  if (!hasJars()) {
    log(`cassandra ${wantedVersion()} jars missing; running ${FETCH_SCRIPT} (about a minute)`);
    const r = spawnSync('bash', [FETCH_SCRIPT], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0 || !hasJars()) {
      throw new Error(`scripts/fetch-cassandra.sh failed (exit ${r.status ?? r.signal}); cannot start Cassandra`);
    }
  }
  return readdirSync(LIB_DIR)
    .filter((n) => n.endsWith('.jar'))
    .sort()
    .map((n) => path.join(LIB_DIR, n));
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('could not allocate a port'))));
    });
  });
}

async function twoFreePorts(): Promise<[number, number]> {
  const a = await freePort();
  let b = await freePort();
  while (b === a) b = await freePort();
  return [a, b];
}

function javaBinary(): string {
  if (process.env.CASSANDRA_JAVA) return process.env.CASSANDRA_JAVA;
  if (process.env.JAVA_HOME) {
    const j = path.join(process.env.JAVA_HOME, 'bin', 'java');
    if (existsSync(j)) return j;
  }
  return 'java';
}

/**
 * Cassandra calls mlockall(MCL_CURRENT) at start. As root (CAP_IPC_LOCK) that succeeds and pins
 * the whole committed heap and every mapped jar in RAM (~1 GB resident right after start instead
 * of ~0.4 GB). When we are root and util-linux `setpriv` is there, exec java without that
 * capability so the call fails harmlessly (Cassandra logs a warning and goes on).
 * setpriv execs, so the child's pid is still the JVM's.
 */
let setprivWorks: boolean | undefined;
function withoutMemlockCapability(java: string, args: string[]): [string, string[]] {
  if (process.getuid?.() !== 0 || process.env.CASSANDRA_ALLOW_MLOCK === '1') return [java, args];
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
  if (!setpriv) return [java, args];
  setprivWorks ??= spawnSync(setpriv, ['--inh-caps=-ipc_lock', '--bounding-set=-ipc_lock', '--', 'true']).status === 0;
  if (!setprivWorks) return [java, args];
  return [setpriv, ['--inh-caps=-ipc_lock', '--bounding-set=-ipc_lock', '--', java, ...args]];
}

function cassandraYaml(dir: string, clusterName: string, storagePort: number, nativePort: number): string {
  const d = (sub: string) => JSON.stringify(path.join(dir, sub));
  return `# generated by test/helpers/cassandra.ts: single throwaway node on loopback
cluster_name: ${JSON.stringify(clusterName)}
num_tokens: 1
initial_token: 0
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "${HOST}:${storagePort}"
listen_address: ${HOST}
rpc_address: ${HOST}
storage_port: ${storagePort}
native_transport_port: ${nativePort}
start_native_transport: true
data_file_directories:
  - ${d('data')}
commitlog_directory: ${d('commitlog')}
saved_caches_directory: ${d('saved_caches')}
hints_directory: ${d('hints')}
cdc_raw_directory: ${d('cdc_raw')}
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 8MiB
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
role_manager: CassandraRoleManager
auto_snapshot: false
snapshot_before_compaction: false
hinted_handoff_enabled: false
dynamic_snitch: false
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 8
concurrent_compactors: 1
memtable_heap_space: 64MiB
memtable_offheap_space: 64MiB
file_cache_size: 32MiB
networking_cache_size: 16MiB
key_cache_size: 8MiB
counter_cache_size: 4MiB
index_summary_capacity: 8MiB
# generous timeouts: the machine is small and shared with test suites
read_request_timeout: 10000ms
range_request_timeout: 20000ms
write_request_timeout: 10000ms
counter_write_request_timeout: 10000ms
truncate_request_timeout: 60000ms
request_timeout: 20000ms
`;
}

const LOGBACK_XML = `<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{HH:mm:ss.SSS} %logger{0}: %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
`;

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: HOST, port });
    const done = (ok: boolean) => {
      s.removeAllListeners();
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

async function cqlReady(port: number): Promise<string | undefined> {
  const client = new cassandra.Client({
    contactPoints: [`${HOST}:${port}`],
    localDataCenter: LOCAL_DC,
    socketOptions: { connectTimeout: 3000, readTimeout: 5000 },
    pooling: { warmup: false },
  });
  try {
    await client.connect();
    const rs = await client.execute('SELECT release_version FROM system.local');
    return String(rs.first()?.get('release_version') ?? '');
  } catch {
    return undefined;
  } finally {
    await client.shutdown().catch(() => {});
  }
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = () => {
      clearTimeout(t);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

class PortClashError extends Error {}

/**
 * Start a fresh single-node Cassandra on 127.0.0.1 (free ports, temp dir) and wait until it
 * answers CQL. Throws, with the JVM's last output, if it dies or is not ready within 180 s.
 */
export async function startCassandra(opts: StartCassandraOptions = {}): Promise<CassandraHandle> {
  // The ports are free when picked but another process may take one before the JVM binds it.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (e) {
      if (!(e instanceof PortClashError) || attempt >= 3) throw e;
      opts.log?.(`[cassandra-helper] port already in use; retrying with new ports`);
    }
  }
}

async function startOnce(opts: StartCassandraOptions): Promise<CassandraHandle> {
  const debug = process.env.CASSANDRA_DEBUG === '1';
  const userLog = opts.log;
  const note = (line: string) => {
    userLog?.(`[cassandra-helper] ${line}`);
    if (debug) process.stderr.write(`[cassandra-helper] ${line}\n`);
  };

  const jars = ensureJars(note);
  const jamm = jars.find((j) => /\/jamm-[^/]*\.jar$/.test(j));

  const dir = mkdtempSync(path.join(os.tmpdir(), 'cassandra-test-'));
  for (const sub of ['data', 'commitlog', 'saved_caches', 'hints', 'cdc_raw', 'logs', 'triggers']) {
    mkdirSync(path.join(dir, sub), { recursive: true });
  }
  const [storagePort, nativePort] = await twoFreePorts();
  const clusterName = `test-${randomBytes(4).toString('hex')}`;
  const yamlPath = path.join(dir, 'cassandra.yaml');
  const logbackPath = path.join(dir, 'logback.xml');
  writeFileSync(yamlPath, cassandraYaml(dir, clusterName, storagePort, nativePort));
  writeFileSync(logbackPath, LOGBACK_XML);

  const heap = process.env.CASSANDRA_HEAP;
  const args = [
    heap ? `-Xms${heap}` : '-Xms512m',
    `-Xmx${heap ?? '1g'}`,
    '-Xss256k',
    '-XX:+UseG1GC',
    '-XX:+ParallelRefProcEnabled',
    '-XX:MaxGCPauseMillis=300',
    '-XX:MaxDirectMemorySize=512m',
    '-XX:+PerfDisableSharedMem',
    '-XX:+HeapDumpOnOutOfMemoryError',
    `-XX:HeapDumpPath=${path.join(dir, 'logs')}`,
    // C1 only: ~0.5 s faster start and less CPU on 2 cores; CASSANDRA_FULL_JIT=1 for C2 (benchmarks)
    ...(process.env.CASSANDRA_FULL_JIT === '1' ? [] : ['-XX:TieredStopAtLevel=1']),
    '-Djava.net.preferIPv4Stack=true',
    ...JVM17_FLAGS,
    ...(jamm ? [`-javaagent:${jamm}`] : []),
    '-Dcassandra-foreground=yes',
    `-Dcassandra.config=file://${yamlPath}`,
    `-Dlogback.configurationFile=file://${logbackPath}`,
    `-Dcassandra.logdir=${path.join(dir, 'logs')}`,
    `-Dcassandra.storagedir=${dir}`,
    `-Djava.io.tmpdir=${dir}`,
    `-Dcassandra.triggers_dir=${path.join(dir, 'triggers')}`,
    // JMX: neither cassandra.jmx.local.port nor .remote.port, so no JMX server or port at all.
    // single-node test start-up speed-ups
    '-Dcassandra.skip_wait_for_gossip_to_settle=0',
    '-Dcassandra.ring_delay_ms=100',
    '-Dcassandra.gossip_settle_min_wait_ms=0',
    '-Dcassandra.superuser_setup_delay_ms=0',
    '-Dcassandra.schema_delay_ms=0',
    '-Dcassandra.load_ring_state=false',
    '-Dcassandra.initial_token=0',
    // durability is irrelevant for a throwaway node: no fsync, no flush of system/schema tables
    '-Dcassandra.unsafesystem=true',
    '-Dcassandra.skip_sync=true',
    '-Dcassandra.test.flush_local_schema_changes=false',
    '-Dcassandra.available_processors=2',
    // skip the ~1.5 s start-up measurement of the memtable row overhead (180 is what it measures here)
    '-Dcassandra.memtable.row_overhead_size=180',
    // fast stop(): no 2 s gossip shutdown announcement, no 2 s messaging quiesce
    '-Dcassandra.shutdown_announce_in_ms=0',
    '-Dcassandra.test.messagingService.nonGracefulShutdown=true',
    '-Dchronicle.announcer.disable=true',
    ...(process.env.CASSANDRA_JVM_OPTS?.split(/\s+/).filter(Boolean) ?? []),
    '-cp',
    jars.join(path.delimiter),
    'org.apache.cassandra.service.CassandraDaemon',
  ];

  installExitHook();
  const started = Date.now();
  note(`starting Cassandra in ${dir} (native ${HOST}:${nativePort}, storage ${storagePort})`);
  const [cmd, cmdArgs] = withoutMemlockCapability(javaBinary(), args);
  const child = spawn(cmd, cmdArgs, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  liveJvms.add(child);
  const watchdog = child.pid ? spawnWatchdog(child.pid, dir) : undefined;

  const tail: string[] = [];
  let spawnError: Error | undefined;
  let wake: (() => void) | undefined; // cuts the poll sleep short when the log says CQL is up
  const errors: string[] = []; // first ERROR lines, kept even when the tail has moved on
  const onLine = (line: string) => {
    if (errors.length < 10 && /^(ERROR|Exception)/.test(line)) errors.push(line);
    if (wake && /Starting listening for CQL clients|Startup complete/.test(line)) wake();
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
    userLog?.(line);
    if (debug) process.stderr.write(`[cassandra] ${line}\n`);
  };
  for (const stream of [child.stdout, child.stderr]) {
    let buf = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    stream?.on('end', () => {
      if (buf) onLine(buf);
      buf = '';
    });
  }
  child.on('error', (e) => {
    spawnError = e;
    wake?.();
  });
  child.on('exit', () => wake?.());
  const exited = () => spawnError !== undefined || child.exitCode !== null || child.signalCode !== null;

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (!exited()) {
        child.kill('SIGTERM');
        if (!(await waitForExit(child, STOP_GRACE_MS))) {
          child.kill('SIGKILL');
          await waitForExit(child, 5_000);
        }
      }
      liveJvms.delete(child);
      watchdog?.stdin?.destroy(); // watchdog wakes up, finds nothing to kill or remove, exits
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  const fail = async (why: string): Promise<never> => {
    const lines = tail.slice(-40).join('\n');
    await stop();
    const clash = exited() && /Address already in use|BindException|Failed to bind port/.test(errors.join('\n') + lines);
    const errs = errors.length ? `\n--- first errors ---\n${errors.join('\n')}` : '';
    throw new (clash ? PortClashError : Error)(`Cassandra failed to start: ${why}${errs}\n--- last JVM output ---\n${lines}`);
  };

  let version: string | undefined;
  const deadline = started + START_TIMEOUT_MS;
  for (;;) {
    if (spawnError) await fail(`could not run ${javaBinary()}: ${spawnError.message}`);
    if (exited()) await fail(`JVM exited (code ${child.exitCode}, signal ${child.signalCode})`);
    if (Date.now() > deadline) await fail(`not ready after ${START_TIMEOUT_MS / 1000}s`);
    if (await tcpOpen(nativePort)) {
      version = await cqlReady(nativePort);
      if (version !== undefined) break;
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, POLL_INTERVAL_MS);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
    wake = undefined;
  }
  note(`Cassandra ${version} ready on ${HOST}:${nativePort} after ${((Date.now() - started) / 1000).toFixed(1)}s`);

  // Do not let a forgotten stop() keep the test process alive; the exit hook kills the JVM.
  child.unref();
  (child.stdout as unknown as net.Socket | null)?.unref?.();
  (child.stderr as unknown as net.Socket | null)?.unref?.();

  return {
    contactPoints: [`${HOST}:${nativePort}`],
    localDataCenter: LOCAL_DC,
    port: nativePort,
    stop,
  };
}

/**
 * A Cassandra for a test: the cluster named by CASSANDRA_CONTACT_POINTS ("host:port,...")
 * when that is set (stop() is then a no-op), else a fresh local node from startCassandra().
 */
export async function withCassandra(opts: StartCassandraOptions = {}): Promise<CassandraHandle> {
  const env = process.env.CASSANDRA_CONTACT_POINTS?.trim();
  if (env) {
    const contactPoints = env
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const firstPort = Number(contactPoints[0]?.match(/:(\d+)$/)?.[1] ?? 9042);
    return {
      contactPoints,
      localDataCenter: process.env.CASSANDRA_LOCAL_DC?.trim() || LOCAL_DC,
      port: firstPort,
      stop: async () => {},
    };
  }
  return startCassandra(opts);
}
