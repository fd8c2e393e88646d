import type { RedisOptions } from 'bullmq';

/**
 * BullMQ's connection for `REDIS_URL`. The URL is handed whole to ioredis (BullMQ builds its
 * clients with `new Redis(url, options)`), whose parser keeps what a managed Redis needs: TLS
 * for `rediss:`, the ACL user beside the password, the database number.
 */
export function redisConnection(redisUrl: string): RedisOptions {
  const { protocol } = new URL(redisUrl);
  if (protocol !== 'redis:' && protocol !== 'rediss:') throw new Error(`REDIS_URL must be redis:// or rediss://, not ${protocol}`);
  return { url: redisUrl };
}
