/** The Bus contract on the in-process bus and on Redis pub/sub (real Redis, a prefix per test). */
import { randomBytes } from 'node:crypto';
import { MemoryBus } from '../../server/src/bus/bus.memory.ts';
import { RedisBus } from '../../server/src/bus/bus.redis.ts';
import { createLogger } from '../../server/src/observability/logger.ts';
import { services } from '../helpers/env.ts';
import { registerBusContractTests } from './bus.contract.ts';

registerBusContractTests('memory', async () => {
  const bus = new MemoryBus();
  return { bus, cleanup: () => bus.close() };
});

const logger = createLogger({ level: 'silent', replicaId: 'bus-contract' });
registerBusContractTests('Redis', async () => {
  const prefix = `t${randomBytes(4).toString('hex')}:`;
  const open: RedisBus[] = [];
  const make = async () => {
    const b = new RedisBus(services.redisUrl(), { logger, prefix });
    open.push(b);
    await b.ready();
    return b;
  };
  return { bus: await make(), second: make, cleanup: async () => void (await Promise.all(open.map((b) => b.close()))) };
});
