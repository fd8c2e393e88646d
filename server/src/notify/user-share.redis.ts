import type { Redis } from 'ioredis';
import type { UserShare } from './user-share.ts';

// KEYS: the key's lease set. ARGV: holder, cap, leaseMs. Leases are scored by their end in
// Redis time; expired ones (a worker that died holding one) are dropped first.
const ACQUIRE = `
local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local ends = now + tonumber(ARGV[3])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ends, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

/** The user share of the BullMQ workers: one lease set per (channel, user) in Redis, shared by every worker. */
export class RedisUserShare implements UserShare {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = 'hubbub:',
  ) {}

  async acquire(key: string, holder: string, cap: number, leaseMs: number) {
    return (await this.redis.eval(ACQUIRE, 1, `${this.prefix}notify:share:${key}`, holder, cap, leaseMs)) === 1;
  }

  async release(key: string, holder: string) {
    await this.redis.zrem(`${this.prefix}notify:share:${key}`, holder);
  }
}
