import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { PasswordHasher } from './passwords.ts';

const hasher = new PasswordHasher({ memoryCost: 19_456, timeCost: 2, nice: 10, threads: 2 });
after(() => hasher.close());

/** Nice values of this process's threads (field 19 of /proc/<pid>/task/<tid>/stat). */
function threadNices(): number[] {
  return readdirSync('/proc/self/task').map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}

test('argon2id hashes verify; wrong, unknown and malformed hashes are refused without throwing', async () => {
  const h = await hasher.hash('correct horse battery staple');
  assert.match(h, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  const [ok, wrong, unknown, malformed] = await Promise.all([
    hasher.verify(h, 'correct horse battery staple'),
    hasher.verify(h, 'correct horse battery stapl'),
    hasher.verify(null, 'anything'),
    hasher.verify('not-a-hash', 'anything'),
  ]);
  assert.deepEqual([ok, wrong, unknown, malformed], [true, false, false, false]);
});

test('many concurrent verifies all complete on the two hashing threads', async () => {
  const h = await hasher.hash('pw');
  const results = await Promise.all(Array.from({ length: 12 }, (_, i) => hasher.verify(h, i % 3 === 0 ? 'pw' : 'nope')));
  assert.deepEqual(
    results,
    Array.from({ length: 12 }, (_, i) => i % 3 === 0),
  );
});

test('the hashing threads run at nice 10 and the event loop thread does not', {
  skip: process.platform !== 'linux' && 'Linux only',
}, async () => {
  await hasher.hash('warm');
  const nices = threadNices();
  assert.equal(nices[0], 0, 'the main thread keeps its priority');
  assert.equal(nices.filter((n) => n === 10).length, 2, `two threads at nice 10: ${nices.join(',')}`);
});

test('a second hashing thread starts only once a hash finds the first busy', {
  skip: process.platform !== 'linux' && 'Linux only',
}, async () => {
  const lazy = new PasswordHasher({ memoryCost: 19_456, timeCost: 2, nice: 7, threads: 2 });
  try {
    // An unknown user's verify waits for the dummy hash (made at construction), then verifies.
    assert.equal(await lazy.verify(null, 'no such user'), false);
    const h = await lazy.hash('one at a time');
    assert.equal(await lazy.verify(h, 'one at a time'), true);
    assert.equal(threadNices().filter((n) => n === 7).length, 1, 'one thread for hashes that come one at a time');
    await Promise.all([lazy.hash('a'), lazy.hash('b')]);
    assert.equal(threadNices().filter((n) => n === 7).length, 2, 'a second thread for two at once');
  } finally {
    await lazy.close();
  }
});
