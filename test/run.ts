/**
 * `npm test`: starts the real services the suites need on loopback (PostgreSQL, Redis,
 * Cassandra, stripe-mock, SeaweedFS as the S3 store), unless DATABASE_URL / REDIS_URL /
 * CASSANDRA_CONTACT_POINTS / STRIPE_API_URL / TEST_S3_ENDPOINT are given, runs every
 * test file with Node's test runner, and stops the services. A missing service fails the run.
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { startPostgres, type PostgresHandle } from './helpers/postgres.ts';
import { startRedis, type RedisHandle } from './helpers/redis.ts';
import { withCassandra, type CassandraHandle } from './helpers/cassandra.ts';
import { startStripeMock } from './helpers/stripe-mock.ts';
import { startSeaweed } from './helpers/seaweedfs.ts';

const root = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const only = args.filter((a) => !a.startsWith('--'));

function findTests(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) findTests(p, out);
    else if (name.endsWith('.test.ts')) out.push(path.relative(root, p));
  }
  return out;
}

const files = (
  only.length
    ? only
    : [...findTests(path.join(root, 'test')), ...findTests(path.join(root, 'server')), ...findTests(path.join(root, 'client'))]
).sort();

const started: { stop(): Promise<void> }[] = [];
const env: Record<string, string> = { ...(process.env as Record<string, string>) };
const log = (s: string) => process.stderr.write(`[test] ${s}\n`);

/** Runs a tool from node_modules with the terminal's output; resolves to its exit code. */
function tool(bin: string, argv: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(root, 'node_modules', bin), ...argv], { stdio: 'inherit', cwd: root });
    child.on('exit', (c) => resolve(c ?? 1));
  });
}

/**
 * The type check, the linter and the format check run first: a suite that passes on code that
 * does not type-check, or that the linter refuses, is no pass.
 */
async function typecheck(): Promise<number> {
  const [tsc, biome] = await Promise.all([
    tool('typescript/bin/tsc', ['--noEmit', '-p', root]),
    tool('@biomejs/biome/bin/biome', ['ci', '--reporter=summary', '.']),
  ]);
  if (biome !== 0) log('lint or format check failed: `npm run lint` shows where, `npm run format` formats');
  return tsc || biome;
}

async function main() {
  const t0 = Date.now();
  if (!args.includes('--no-typecheck')) {
    if ((await typecheck()) !== 0) {
      log('checks failed');
      return 1;
    }
    log(`type, lint and format checks passed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  const jobs: Promise<void>[] = [];
  if (!env.DATABASE_URL) {
    jobs.push(
      startPostgres().then((pg: PostgresHandle) => {
        started.push(pg);
        env.DATABASE_URL = pg.url;
        log(`PostgreSQL at ${pg.url}`);
      }),
    );
  }
  if (!env.REDIS_URL) {
    jobs.push(
      startRedis().then((r: RedisHandle) => {
        started.push(r);
        env.REDIS_URL = r.url;
        log(`Redis at ${r.url}`);
      }),
    );
  }
  if (!env.STRIPE_API_URL) {
    jobs.push(
      startStripeMock().then((s) => {
        started.push(s);
        env.STRIPE_API_URL = s.url;
        log(`stripe-mock at ${s.url}`);
      }),
    );
  }
  if (!env.TEST_S3_ENDPOINT) {
    jobs.push(
      startSeaweed().then((s) => {
        started.push(s);
        env.TEST_S3_ENDPOINT = s.endpoint;
        env.TEST_S3_ACCESS_KEY_ID = s.accessKeyId;
        env.TEST_S3_SECRET_ACCESS_KEY = s.secretAccessKey;
        log(`SeaweedFS S3 at ${s.endpoint}`);
      }),
    );
  }
  if (!env.CASSANDRA_CONTACT_POINTS && !args.includes('--no-cassandra')) {
    jobs.push(
      withCassandra().then((c: CassandraHandle) => {
        started.push(c);
        env.CASSANDRA_CONTACT_POINTS = c.contactPoints.join(',');
        env.CASSANDRA_LOCAL_DC = c.localDataCenter;
        log(`Cassandra at ${env.CASSANDRA_CONTACT_POINTS}`);
      }),
    );
  }
  await Promise.all(jobs);
  log(`services up in ${((Date.now() - t0) / 1000).toFixed(1)} s; running ${files.length} test files`);
  const code = await new Promise<number>((resolve) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--test',
        '--test-concurrency=2',
        '--test-timeout=300000',
        ...args.filter((a) => a.startsWith('--test-')),
        ...files,
      ],
      { cwd: root, env, stdio: 'inherit' },
    );
    child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0)));
  });
  return code;
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (err) {
  log(`FAILED to start test services: ${(err as Error).stack ?? err}`);
  exitCode = 1;
} finally {
  await Promise.allSettled(started.map((s) => s.stop()));
}
process.exit(exitCode);
