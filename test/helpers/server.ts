import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { createTRPCClient, httpBatchLink, TRPCClientError } from '@trpc/client';
import type { AppRouter } from '../../server/src/api/root.ts';
import { testConfig } from '../../server/src/config.ts';
import { startReplica, type Replica } from '../../server/src/replica.ts';
import { createDatabase } from './postgres.ts';
import { services } from './env.ts';

export type DbKind = 'pglite' | 'postgres';
export const dbKinds: DbKind[] = ['pglite', 'postgres'];

/** One JWT secret per test process, so replicas of one test accept each other's tokens. */
export const sharedSecret = randomBytes(32).toString('base64url');

export interface TestEnv {
  /** Environment overrides for replicas of this environment (database, Redis, secrets). */
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

/**
 * A fresh, isolated backing environment: PGlite in a temp dir, or a new database on the test
 * PostgreSQL server; with `redis`, a unique key prefix on the test Redis.
 */
export async function testEnv(kind: DbKind, opts: { redis?: boolean } = {}): Promise<TestEnv> {
  const env: Record<string, string> = { JWT_SECRET: sharedSecret, LOGIN_MAX_PER_IP: '100000' };
  let dir: string | null = null;
  if (kind === 'postgres') env.DATABASE_URL = await createDatabase(services.databaseUrl());
  else env.DATA_DIR = dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-pglite-'));
  if (opts.redis) {
    env.REDIS_URL = services.redisUrl();
    env.REDIS_PREFIX = `t${randomBytes(4).toString('hex')}:`;
  }
  return {
    env,
    async cleanup() {
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function startTestReplica(env: Record<string, string>, overrides: Record<string, string> = {}): Promise<Replica> {
  return startReplica(testConfig({ ...env, ...overrides }));
}

/** A replica that a describe block shares, with the environment it runs on (`env`: its variables). */
export type SuiteReplica = Replica & { readonly env: Record<string, string> };

/**
 * One replica for the tests of a describe block, on a fresh environment of its own: started in
 * `before()`, stopped and its environment removed in `after()`. The object stands for the replica
 * once `before()` has run (tests read `replica.port`, `replica.services`… as from `startTestReplica`).
 */
export function replicaPerSuite(kind: DbKind, overrides: Record<string, string> = {}, opts: { redis?: boolean } = {}): SuiteReplica {
  let env: TestEnv | undefined;
  let replica: Replica | undefined;
  before(async () => {
    env = await testEnv(kind, opts);
    replica = await startTestReplica(env.env, overrides);
  });
  after(async () => {
    await replica?.stop();
    await env?.cleanup();
  });
  return new Proxy({} as SuiteReplica, {
    get(_, key) {
      if (key === 'env') return env?.env;
      if (!replica) throw new Error(`replica.${String(key)} read before the suite's before() started it`);
      const value = Reflect.get(replica, key);
      return typeof value === 'function' ? value.bind(replica) : value;
    },
  });
}

/** A replica of the test's own (a setting no shared one has), stopped and its environment removed whatever `body` does. */
export async function withReplica<T>(
  kind: DbKind,
  overrides: Record<string, string>,
  body: (replica: Replica, env: TestEnv) => Promise<T>,
): Promise<T> {
  const env = await testEnv(kind);
  try {
    const replica = await startTestReplica(env.env, overrides);
    try {
      return await body(replica, env);
    } finally {
      await replica.stop();
    }
  } finally {
    await env.cleanup();
  }
}

export function trpcClient(port: number, token?: string | (() => string | undefined)) {
  return createTRPCClient<AppRouter>({
    links: [
      httpBatchLink({
        url: `http://127.0.0.1:${port}/trpc`,
        headers: () => {
          const t = typeof token === 'function' ? token() : token;
          return t ? { authorization: `Bearer ${t}` } : {};
        },
      }),
    ],
  });
}

export type Client = ReturnType<typeof trpcClient>;

let n = 0;
/** Registers a new user with a unique name; returns its tokens and an authed client. */
export async function newUser(port: number, name = 'user') {
  const suffix = `${process.pid}_${++n}_${randomBytes(2).toString('hex')}`;
  const username = `${name}_${suffix}`.slice(0, 32);
  const password = 'correct horse battery ' + suffix;
  const anon = trpcClient(port);
  const r = await anon.auth.register.mutate({ email: `${username}@example.com`, username, password });
  let accessToken = r.accessToken;
  const client = trpcClient(port, () => accessToken);
  return {
    ...r,
    id: r.user.id,
    username,
    password,
    client,
    setToken: (t: string) => (accessToken = t),
  };
}

/** The tRPC error code of a rejected call (fails the test if it did not reject). */
export async function errorCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof TRPCClientError) return (err.data as { code?: string } | undefined)?.code ?? `HTTP_${err.data?.httpStatus}`;
    throw err;
  }
  throw new Error('expected the call to fail, it succeeded');
}
