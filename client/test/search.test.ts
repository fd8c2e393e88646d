import assert from 'node:assert/strict';
import { test } from 'node:test';
import { snippetParts } from '../src/index.ts';

test('13 snippetParts: marked pieces from <mark>, everything else unescaped text (a typed <mark> stays text)', () => {
  assert.deepEqual(snippetParts('a &lt;mark&gt;x&lt;/mark&gt; <mark>hit</mark> &amp; <mark>two</mark>'), [
    { text: 'a <mark>x</mark> ', mark: false },
    { text: 'hit', mark: true },
    { text: ' & ', mark: false },
    { text: 'two', mark: true },
  ]);
  assert.deepEqual(snippetParts('<mark>all</mark>'), [{ text: 'all', mark: true }]);
});
