import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StoredEvent } from '../store/message-store.ts';
import { IndexBuffer } from './index-buffer.ts';
import { pgArray } from './index-sql.postgres.ts';

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';
const U = '00000000-0000-4000-8000-0000000000aa';
const ev = (conv: string, seq: number, kind: StoredEvent['kind'], data: Record<string, unknown>): StoredEvent => ({
  conv,
  seq,
  id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
  kind,
  from: U,
  ts: 1_700_000_000_000 + seq,
  data,
});

test('11 the buffer folds edits and deletes into what the index must become', () => {
  const b = new IndexBuffer();
  b.add(ev(A, 1, 'message', { body: 'one', mentions: [U, 'not-a-uuid'] }));
  b.add(ev(A, 2, 'message', { body: 'two' }));
  b.add(ev(A, 3, 'edit', { target: 1, body: 'one edited' }));
  b.add(ev(A, 4, 'delete', { target: 2 }));
  b.add(ev(A, 5, 'edit', { target: 2, body: 'too late' }));
  b.add(ev(A, 6, 'edit', { target: 99, body: 'elsewhere', mentions: [U] }));
  b.add(ev(A, 7, 'reaction', { target: 1, emoji: 'x', on: true }));
  b.add(ev(A, 8, 'message', { attachments: [] }));
  assert.equal(b.size, 8);
  const batch = b.take();
  assert.deepEqual(
    batch.rows.map((r) => [r.seq, r.body, r.mentions, r.version]),
    [[1, 'one edited', null, 3]],
    'an edit of a held message rewrites it (its mentions with it); a deleted one is gone; no body, no row',
  );
  assert.deepEqual(batch.edits, [{ conv: A, target: 99, body: 'elsewhere', mentions: [U], version: 6 }]);
  assert.deepEqual(batch.deletes, [{ conv: A, target: 2, version: 4 }], 'a tombstone even for a held message');
  assert.deepEqual(batch.runs, [{ conv: A, first: 1, last: 8 }]);
  assert.equal(b.size, 0);
  assert.deepEqual(b.take().rows, []);
});

test('11 the cursor run stops at the first seq another replica appended', () => {
  const b = new IndexBuffer();
  for (const s of [4, 5, 7, 8]) b.add(ev(A, s, 'message', { body: `m${s}` }));
  b.add(ev(B, 1, 'message', { body: 'b1' }));
  const batch = b.take();
  assert.deepEqual(batch.runs, [
    { conv: A, first: 4, last: 5 },
    { conv: B, first: 1, last: 1 },
  ]);
  assert.equal(batch.rows.length, 5, 'every message is still written');
  assert.deepEqual(batch.convs, [A, B]);
});

test('11 array literals quote text so any body survives', () => {
  assert.equal(pgArray([]), '{}');
  assert.equal(pgArray([1, null, 'a']), '{1,NULL,"a"}');
  assert.equal(pgArray(['say "hi"', 'back\\slash', 'NULL', '{,}']), '{"say \\"hi\\"","back\\\\slash","NULL","{,}"}');
});
