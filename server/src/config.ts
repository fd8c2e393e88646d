import { z } from 'zod';

/**
 * The one place that reads `process.env` (STYLE habit 2). Parsed once at boot; a bad value
 * stops the process with a message naming the variable.
 */
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');

const intIn = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const csv = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean),
);

export const configSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    PORT: intIn(0, 65535).default(3000),
    HOST: z.string().min(1).default('0.0.0.0'),
    /** The hub's /metrics, on a port of its own: never the public one the load balancer exposes. */
    METRICS_PORT: intIn(0, 65535).default(9464),
    DATA_DIR: z.string().min(1).default('./data'),
    DATABASE_URL: z.string().url().optional(),
    DATABASE_POOL_MAX: intIn(1, 200).default(10),
    REDIS_URL: z.string().url().optional(),
    /** Prefix of every Redis key and channel, so several deployments (or test runs) can share one Redis. */
    REDIS_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9:_.-]{1,64}$/)
      .default('hubbub:'),
    CASSANDRA_CONTACT_POINTS: csv.optional(),
    CASSANDRA_LOCAL_DC: z.string().min(1).default('datacenter1'),
    CASSANDRA_KEYSPACE: z
      .string()
      .regex(/^[a-z][a-z0-9_]{0,47}$/, 'lower-case identifier')
      .default('hubbub'),
    CASSANDRA_REPLICATION_FACTOR: intIn(1, 9).default(1),
    MESSAGE_STORE: z.enum(['postgres', 'cassandra']).default('postgres'),
    JWT_SECRET: z.string().min(32, 'at least 32 characters').optional(),
    JWT_ISSUER: z.string().default('hubbub'),
    JWT_AUDIENCE: z.string().default('hubbub'),
    ACCESS_TOKEN_TTL_S: intIn(30, 86_400).default(900),
    REFRESH_TOKEN_TTL_S: intIn(60, 90 * 86_400).default(30 * 86_400),
    REFRESH_REUSE_GRACE_MS: intIn(0, 60_000).default(10_000),
    /** Unset: the demo's own origins on PORT (see the transform below). */
    ALLOWED_ORIGINS: csv.optional(),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    REPLICA_ID: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/)
      .optional(),
    MAX_BODY_BYTES: intIn(1024, 10 * 1024 * 1024).default(1024 * 1024),
    // Argon2id cost. OWASP minimum m=19456 KiB, t=2, p=1; the schema refuses weaker settings.
    ARGON2_MEMORY_KIB: intIn(19_456, 1_048_576).default(19_456),
    ARGON2_TIME_COST: intIn(2, 10).default(2),
    /** Nice value of the password-hashing threads (0-19; 0 = the event loop's priority). */
    PASSWORD_HASH_NICE: intIn(0, 19).default(10),
    LOGIN_MAX_PER_ACCOUNT: intIn(1, 1000).default(10),
    LOGIN_MAX_PER_IP: intIn(1, 100_000).default(100),
    LOGIN_WINDOW_S: intIn(1, 86_400).default(900),
    TRUST_PROXY: bool.default(false),
    // WebSocket limits: frame size, body length, send rate and burst, connections per user, heartbeat.
    WS_MAX_FRAME_BYTES: intIn(1024, 16 * 1024 * 1024).default(64 * 1024),
    WS_MAX_BODY_CHARS: intIn(1, 100_000).default(4000),
    WS_RATE_PER_S: intIn(1, 100_000).default(20),
    WS_RATE_BURST: intIn(1, 100_000).default(60),
    WS_MAX_CONNECTIONS_PER_USER: intIn(1, 10_000).default(20),
    WS_HEARTBEAT_MS: intIn(1000, 300_000).default(25_000),
    WS_PONG_TIMEOUT_MS: intIn(1000, 300_000).default(10_000),
    WS_MAX_BACKPRESSURE_BYTES: intIn(16 * 1024, 1024 * 1024 * 1024).default(1024 * 1024),
    WS_RESUME_MAX_EVENTS: intIn(10, 100_000).default(1000),
    WS_RESUME_HOLD_MS: intIn(0, 60_000).default(1000),
    WS_RESUME_ANNOUNCED_HOLD_MS: intIn(0, 300_000).default(30_000),
    PRESENCE_OFFLINE_GRACE_MS: intIn(0, 600_000).default(2000),
    // Work budgets (docs/operations.md, "Work budgets"): what one socket, user or request may make a replica do.
    WS_RESUME_EVENTS_PER_S: intIn(1, 10_000_000).default(2000),
    WS_RESUME_EVENTS_BURST: intIn(1, 10_000_000).default(20_000),
    API_RATE_PER_S: intIn(1, 1_000_000).default(100),
    API_RATE_BURST: intIn(1, 1_000_000).default(300),
    API_ANON_RATE_PER_S: intIn(1, 1_000_000).default(200),
    API_ANON_RATE_BURST: intIn(1, 1_000_000).default(1000),
    API_HISTORY_ROWS_PER_S: intIn(1, 10_000_000).default(2000),
    API_HISTORY_ROWS_BURST: intIn(100, 10_000_000).default(5000),
    API_MAX_BATCH_CALLS: intIn(1, 10_000).default(50),
    HTTP_MAX_URL_BYTES: intIn(256, 1_000_000).default(8192),
    HTTP_MAX_HEADER_BYTES: intIn(1024, 1_000_000).default(16_384),
    MAX_GROUP_MEMBERS: intIn(2, 100_000).default(1000),
    DRAIN_TIMEOUT_MS: intIn(0, 600_000).default(10_000),
    // Payments, notifications: read here so the composition roots never touch process.env.
    PAYMENTS_CURRENCY: z
      .string()
      .regex(/^[a-z]{3}$/, 'a lower-case ISO 4217 code')
      .default('usd'),
    /** Bounds of one top-up, in minor units of PAYMENTS_CURRENCY. */
    TOPUP_MIN: intIn(1, 1_000_000_000_000).default(100),
    TOPUP_MAX: intIn(1, 1_000_000_000_000).default(100_000),
    STRIPE_SECRET_KEY: z.string().optional(),
    STRIPE_WEBHOOK_SECRET: z.string().optional(),
    /** Another Stripe API server (stripe-mock in tests), e.g. http://127.0.0.1:12111. */
    STRIPE_API_URL: z.string().url().optional(),
    STRIPE_WEBHOOK_MAX_BYTES: intIn(1024, 10 * 1024 * 1024).default(256 * 1024),
    /** Paid plans as JSON (see server/src/payments/plans.ts); unset: the default premium plan. */
    PAYMENTS_PLANS: z.string().optional(),
    /** How often due subscriptions are renewed or downgraded. */
    PAYMENTS_RENEW_EVERY_MS: intIn(1000, 86_400_000).default(60_000),
    SMTP_URL: z.string().url().optional(),
    SMTP_FROM: z.string().default('hubbub@localhost'),
    VAPID_PUBLIC_KEY: z.string().optional(),
    VAPID_PRIVATE_KEY: z.string().optional(),
    VAPID_SUBJECT: z.string().default('mailto:ops@localhost'),
    // Notifications: delays before a push and an email digest, links, the SSRF guard, workers.
    /** Off: the hub enqueues no notifications (the settings API still works). */
    NOTIFY_ENABLED: bool.default(true),
    NOTIFY_PUSH_DELAY_MS: intIn(0, 3_600_000).default(5000),
    NOTIFY_EMAIL_DELAY_S: intIn(0, 86_400).default(120),
    NOTIFY_ATTEMPTS: intIn(1, 50).default(8),
    NOTIFY_CONCURRENCY: intIn(1, 1000).default(16),
    /** How long a worker's hold on a job lasts without renewal: a killed worker's job runs again after it. */
    NOTIFY_LOCK_MS: intIn(1000, 600_000).default(30_000),
    /** Each request to a push service or a webhook receiver is given up after this. */
    NOTIFY_SEND_TIMEOUT_MS: intIn(500, 60_000).default(5000),
    /** One user's push (or webhook) sends in flight at once, across every worker: their share of NOTIFY_CONCURRENCY. */
    NOTIFY_USER_CONCURRENCY: intIn(1, 1000).default(4),
    /** An endpoint is paused after this many failures in a row, for NOTIFY_BREAKER_COOLDOWN_MS, doubling after each failed probe up to 16 times. */
    NOTIFY_BREAKER_FAILURES: intIn(1, 1000).default(5),
    NOTIFY_BREAKER_COOLDOWN_MS: intIn(100, 3_600_000).default(60_000),
    /** `npm run workers` serves /metrics and /health on this port (apart from METRICS_PORT, so a hub and workers share a machine). */
    WORKERS_METRICS_PORT: intIn(0, 65535).default(9465),
    /** Signs unsubscribe links (defaults to a key derived from JWT_SECRET). */
    NOTIFY_SECRET: z.string().min(32, 'at least 32 characters').optional(),
    PUBLIC_URL: z.string().url().default('http://localhost:3000'),
    WEBHOOK_ALLOW_PRIVATE: bool.default(false),
    /** Text search configuration of message search (PostgreSQL's `\dF`): `simple` works for every language; a language's own (e.g. `english`) adds stemming and stop words. */
    SEARCH_LANGUAGE: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a text search configuration name, e.g. simple or english')
      .default('simple'),
    /** Off: this replica indexes nothing (another replica or a later start catches up). */
    SEARCH_INDEXER: bool.default(true),
    /** How long new messages wait to be indexed together; they are searchable about this long after their ack. */
    SEARCH_INDEX_DELAY_MS: intIn(0, 1500).default(100),
    // Attachments: bytes on disk under DATA_DIR/blobs unless S3_ENDPOINT and S3_BUCKET are set.
    S3_ENDPOINT: z.string().url().optional(),
    /** The S3 endpoint as browsers reach it, for presigned URLs (default: S3_ENDPOINT). */
    S3_PUBLIC_ENDPOINT: z.string().url().optional(),
    S3_BUCKET: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name')
      .optional(),
    S3_REGION: z.string().min(1).default('us-east-1'),
    S3_ACCESS_KEY_ID: z.string().optional(),
    S3_SECRET_ACCESS_KEY: z.string().optional(),
    S3_FORCE_PATH_STYLE: bool.default(true),
    /** `direct`: clients upload to S3 by presigned URL; `hub`: through the hub (always so on disk). */
    ATTACHMENT_UPLOADS: z.enum(['direct', 'hub']).default('direct'),
    /** Largest file and per-user storage on the free plan (paid plans set their own). */
    ATTACHMENT_MAX_BYTES: intIn(1, 5 * 1024 ** 3).default(25 * 1024 * 1024),
    ATTACHMENT_QUOTA_BYTES: intIn(1, 1024 ** 4).default(1024 ** 3),
    /** Lifetime of an upload URL, and of an unfinished upload before cleanup removes it. */
    ATTACHMENT_UPLOAD_TTL_S: intIn(10, 86_400).default(900),
    /** Lifetime of a download link (the hub checks membership on each use) and of the store's own signed URL it redirects to. */
    ATTACHMENT_LINK_TTL_S: intIn(5, 86_400).default(300),
    ATTACHMENT_STORE_URL_TTL_S: intIn(1, 3600).default(60),
    /** Images with more pixels are refused (decompression bombs), not decoded. */
    ATTACHMENT_MAX_PIXELS: intIn(1, 1_000_000_000).default(50_000_000),
    ATTACHMENT_CLEANUP_EVERY_MS: intIn(1000, 86_400_000).default(60_000),
  })
  .superRefine((c, ctx) => {
    if (c.NODE_ENV === 'production' && !c.JWT_SECRET) {
      ctx.addIssue({ code: 'custom', path: ['JWT_SECRET'], message: 'required when NODE_ENV=production' });
    }
    if (c.TOPUP_MIN > c.TOPUP_MAX) {
      ctx.addIssue({ code: 'custom', path: ['TOPUP_MIN'], message: 'must not exceed TOPUP_MAX' });
    }
    if (c.MESSAGE_STORE === 'cassandra' && !c.CASSANDRA_CONTACT_POINTS) {
      ctx.addIssue({
        code: 'custom',
        path: ['CASSANDRA_CONTACT_POINTS'],
        message: 'required when MESSAGE_STORE=cassandra',
      });
    }
    if (!!c.S3_ENDPOINT !== !!c.S3_BUCKET) {
      ctx.addIssue({
        code: 'custom',
        path: [c.S3_ENDPOINT ? 'S3_BUCKET' : 'S3_ENDPOINT'],
        message: 'S3_ENDPOINT and S3_BUCKET go together',
      });
    }
  })
  // The default follows PORT, so `PORT=3100 npm start` serves a demo whose socket is accepted.
  .transform((c) => ({ ...c, ALLOWED_ORIGINS: c.ALLOWED_ORIGINS ?? [`http://localhost:${c.PORT}`, `http://127.0.0.1:${c.PORT}`] }));

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses an environment (by default `process.env`); throws ConfigError naming each bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Treat empty strings as unset, as shells and compose files often export `FOO=`.
  const cleaned: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') cleaned[k] = v;
  const parsed = configSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(env)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

/** Config for tests and tools: defaults plus overrides, no process.env. */
export function testConfig(overrides: Record<string, string | undefined> = {}): Config {
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    PORT: '0',
    METRICS_PORT: '0',
    WORKERS_METRICS_PORT: '0',
    HOST: '127.0.0.1',
    ...overrides,
  });
}
