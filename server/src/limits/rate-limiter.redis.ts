import type { Redis } from 'ioredis';
import type { RateLimiter } from './rate-limiter.ts';

// INCR and set the expiry on first hit, atomically; returns [count, pttl].
const HIT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}
`;

export class RedisRateLimiter implements RateLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = 'hubbub:rl:',
  ) {}

  async hit(key: string, limit: number, windowMs: number) {
    const [count, pttl] = (await this.redis.eval(HIT, 1, this.prefix + key, windowMs)) as [number, number];
    return { allowed: count <= limit, retryAfterMs: Math.max(0, pttl) };
  }

  async reset(key: string) {
    await this.redis.del(this.prefix + key);
  }
}
