import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DomainError } from '../errors.ts';
import { markSnippet } from './message-search.ts';
import { UnsupportedMessageSearch } from './message-search.unsupported.ts';
import { parseQuery } from './query-syntax.ts';

const badRequest = (e: unknown) => e instanceof DomainError && e.code === 'BAD_REQUEST';

test('11 the query syntax: words and phrases stay text, operators are taken out', () => {
  assert.deepEqual(parseQuery('deploy "blue whale" from:@ann in:"Design team" in:ops has:MENTION -green'), {
    text: 'deploy "blue whale" -green',
    from: ['ann'],
    in: ['Design team', 'ops'],
    hasMention: true,
  });
  const q = parseQuery('x before:2026-03-01 after:2026-02-01T10:00:00+02:00 before:2026-04-01');
  assert.equal(q.before?.toISOString(), '2026-03-01T00:00:00.000Z', 'the earlier before: wins');
  assert.equal(q.after?.toISOString(), '2026-02-01T08:00:00.000Z');
  // Only the five operators are operators; a phrase holding one is text.
  assert.equal(parseQuery('http://example.com "meet from:here" to:bob').text, 'http://example.com "meet from:here" to:bob');
  assert.deepEqual(parseQuery('from:me').from, ['me']);
});

test('11 the query syntax refuses what it cannot mean, as BAD_REQUEST', () => {
  for (const q of ['', '  ', 'before:2026-02-30', 'after:tomorrow', 'has:link', 'from:', 'in:""', 'from:a '.repeat(11)]) {
    assert.throws(() => parseQuery(q), badRequest, JSON.stringify(q));
  }
});

test('11 snippets: everything escaped, only the random markers become <mark>', () => {
  assert.equal(markSnippet('a <b> S1hitE1 & S1twoE1 "q"', 'S1', 'E1'), 'a &lt;b&gt; <mark>hit</mark> &amp; <mark>two</mark> &quot;q&quot;');
  assert.equal(markSnippet('\uE000i\uE001', 'S', 'E'), '&lt;i&amp;');
});

test('11 a store without search refuses it with PRECONDITION_FAILED and says why', async () => {
  const s = new UnsupportedMessageSearch('message search is not available with MESSAGE_STORE=cassandra');
  await assert.rejects(
    s.search(),
    (e) => e instanceof DomainError && e.code === 'PRECONDITION_FAILED' && /MESSAGE_STORE=cassandra/.test(e.message),
  );
});
