/** The Presence contract in memory and on Redis (real Redis, a prefix per test, a short heartbeat). */
import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { MemoryPresence } from '../../server/src/presence/presence.memory.ts';
import { RedisPresence } from '../../server/src/presence/presence.redis.ts';
import { createLogger } from '../../server/src/observability/logger.ts';
import { services } from '../helpers/env.ts';
import { registerPresenceContractTests } from './presence.contract.ts';

registerPresenceContractTests('memory', async () => {
  const presence = new MemoryPresence();
  return { presence, cleanup: () => presence.close() };
});

const logger = createLogger({ level: 'silent', replicaId: 'presence-contract' });
registerPresenceContractTests('Redis', async () => {
  const prefix = `t${randomBytes(4).toString('hex')}:`;
  const clients: Redis[] = [];
  const closers: (() => Promise<void>)[] = [];
  // Each replica on its own connection, so killing one drops only its heartbeat.
  const open = () => {
    const redis = new Redis(services.redisUrl());
    clients.push(redis);
    const presence = new RedisPresence(redis, { replicaId: randomUUID(), logger, prefix, ttlMs: 600 });
    let killed = false;
    closers.push(async () => {
      if (!killed) await presence.close();
    });
    return {
      presence,
      kill() {
        killed = true;
        // Its connection is gone, so its heartbeat fails (unref'd timer, silent logger) and the key expires.
        redis.disconnect();
      },
    };
  };
  return {
    presence: open().presence,
    replica: async () => open(),
    cleanup: async () => {
      for (const c of closers) await c();
      for (const c of clients) c.disconnect();
    },
  };
});
