import type { Redis } from 'ioredis';
import type { Bus } from '../bus/bus.ts';
import { MemoryBus } from '../bus/bus.memory.ts';
import type { Config } from '../config.ts';
import { MemoryRateLimiter } from '../limits/rate-limiter.memory.ts';
import type { RateLimiter } from '../limits/rate-limiter.ts';
import type { Logger } from '../observability/logger.ts';
import { MemoryPresence } from '../presence/presence.memory.ts';
import type { Presence } from '../presence/presence.ts';

/** What replicas share: the bus, presence counts and rate-limit windows; on Redis, or in memory for a single replica. */
export interface Coordination {
  /** The replica's Redis client (null without REDIS_URL). */
  redis: Redis | null;
  bus: Bus;
  presence: Presence;
  limiter: RateLimiter & { close?(): void };
}

export async function openCoordination(config: Config, replicaId: string, logger: Logger): Promise<Coordination> {
  if (!config.REDIS_URL) return { redis: null, bus: new MemoryBus(), presence: new MemoryPresence(), limiter: new MemoryRateLimiter() };
  // Loaded only with Redis: a single replica without it never loads ioredis.
  const [{ Redis }, { RedisBus }, { RedisPresence }, { RedisRateLimiter }] = await Promise.all([
    import('ioredis'),
    import('../bus/bus.redis.ts'),
    import('../presence/presence.redis.ts'),
    import('../limits/rate-limiter.redis.ts'),
  ]);
  // Commands fail fast while Redis is away instead of queueing without bound. Auto-pipelining:
  // the presence scripts and rate-limit hits of one loop turn (a connect storm brings hundreds)
  // leave in one write.
  const redis = new Redis(config.REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1, enableAutoPipelining: true });
  redis.on('error', (err) => logger.warn({ err: err.message }, 'redis error'));
  await new Promise<void>((res, rej) => {
    redis.once('ready', () => res());
    redis.once('end', () => rej(new Error('redis connection ended')));
  });
  const bus = new RedisBus(config.REDIS_URL, { logger, prefix: config.REDIS_PREFIX });
  await bus.ready();
  return {
    redis,
    bus,
    presence: new RedisPresence(redis, { replicaId, logger, prefix: config.REDIS_PREFIX }),
    limiter: new RedisRateLimiter(redis, config.REDIS_PREFIX + 'rl:'),
  };
}
