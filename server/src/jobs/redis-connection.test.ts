import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { redisConnection } from './redis-connection.ts';

/** The client BullMQ makes from a connection: `new Redis(url, rest)`. */
function clientOptions(redisUrl: string) {
  const { url, ...rest } = redisConnection(redisUrl);
  const client = new Redis(url!, { ...rest, lazyConnect: true });
  try {
    return client.options;
  } finally {
    client.disconnect();
  }
}

test('REDIS_URL keeps TLS, the ACL user, the password and the database', () => {
  const o = clientOptions('rediss://app:p%40ss@cache.example.com:6380/2');
  assert.deepEqual([o.host, o.port, o.username, o.password, o.db], ['cache.example.com', 6380, 'app', 'p@ss', 2]);
  assert.ok(o.tls, 'rediss: connects over TLS');
  const plain = clientOptions('redis://127.0.0.1');
  assert.deepEqual([plain.host, plain.port, plain.username ?? null, plain.db, plain.tls], ['127.0.0.1', 6379, null, 0, undefined]);
  assert.throws(() => redisConnection('http://cache.example.com'), /redis:\/\/ or rediss:\/\//);
});
