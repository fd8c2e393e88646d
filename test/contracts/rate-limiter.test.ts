/** The RateLimiter contract in memory (a fake clock) and on Redis (real Redis, a prefix per test). */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { MemoryRateLimiter } from '../../server/src/limits/rate-limiter.memory.ts';
import { RedisRateLimiter } from '../../server/src/limits/rate-limiter.redis.ts';
import { services } from '../helpers/env.ts';
import { registerRateLimiterContractTests } from './rate-limiter.contract.ts';

registerRateLimiterContractTests('memory', async () => {
  let now = 1_000_000;
  const limiter = new MemoryRateLimiter(() => now);
  return {
    limiter,
    pass: async (ms) => void (now += ms),
    cleanup: async () => limiter.close(),
  };
});

registerRateLimiterContractTests('Redis', async () => {
  const redis = new Redis(services.redisUrl());
  const other = new Redis(services.redisUrl());
  const prefix = `t${randomBytes(4).toString('hex')}:rl:`;
  return {
    limiter: new RedisRateLimiter(redis, prefix),
    replica: () => new RedisRateLimiter(other, prefix),
    pass: (ms) => sleep(ms),
    cleanup: async () => {
      redis.disconnect();
      other.disconnect();
    },
  };
});
