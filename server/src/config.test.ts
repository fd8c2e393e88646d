import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from './config.ts';

test('2 config: defaults give a working embedded server', () => {
  const c = loadConfig({});
  assert.equal(c.PORT, 3000);
  assert.equal(c.HOST, '0.0.0.0');
  assert.equal(c.MESSAGE_STORE, 'postgres');
  assert.equal(c.DATABASE_URL, undefined);
  assert.equal(c.ARGON2_MEMORY_KIB, 19456);
});

test('2 config: a bad value stops with the variable named', () => {
  const cases: [Record<string, string>, string][] = [
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ DATABASE_URL: 'not a url' }, 'DATABASE_URL'],
    [{ NODE_ENV: 'production' }, 'JWT_SECRET'],
    [{ JWT_SECRET: 'short' }, 'JWT_SECRET'],
    [{ MESSAGE_STORE: 'mongo' }, 'MESSAGE_STORE'],
    [{ MESSAGE_STORE: 'cassandra' }, 'CASSANDRA_CONTACT_POINTS'],
    [{ ARGON2_MEMORY_KIB: '1024' }, 'ARGON2_MEMORY_KIB'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ CASSANDRA_KEYSPACE: 'Drop Table' }, 'CASSANDRA_KEYSPACE'],
  ];
  for (const [env, name] of cases) {
    assert.throws(
      () => loadConfig(env),
      (err: unknown) => err instanceof ConfigError && err.message.includes(name),
      name,
    );
  }
});

test('2 config: production with a secret is accepted; empty strings count as unset', () => {
  const c = loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40), REDIS_URL: '' });
  assert.equal(c.REDIS_URL, undefined);
  assert.deepEqual(loadConfig({ ALLOWED_ORIGINS: 'https://a.example, https://b.example' }).ALLOWED_ORIGINS, [
    'https://a.example',
    'https://b.example',
  ]);
});
