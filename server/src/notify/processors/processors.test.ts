import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffMs, retryAfterMs, RetryLater } from './outcome.ts';
import { capPayload, PUSH_PAYLOAD_MAX } from './push.ts';
import { renderDigest } from './email.ts';
import { signature } from './webhook.ts';
import { createHmac } from 'node:crypto';

test('a push payload is capped under 4 KB, cutting the body (multi-byte text included) and keeping the rest', () => {
  const p = capPayload({ conv: 'c', title: 'T', body: '€'.repeat(4000), count: 3, badge: 9, url: 'https://x/' });
  assert.ok(Buffer.byteLength(JSON.stringify(p)) <= PUSH_PAYLOAD_MAX);
  assert.ok(p.body.endsWith('…') && p.body.length > 100);
  assert.deepEqual([p.count, p.badge, p.conv], [3, 9, 'c']);
  const small = { conv: 'c', title: 'T', body: 'hi', count: 1, badge: 1, url: 'https://x/' };
  assert.deepEqual(capPayload(small), small);
});

test('Retry-After in seconds or as a date; backoff grows exponentially with jitter, or waits as asked', () => {
  assert.equal(retryAfterMs('7', 0), 7000);
  assert.equal(retryAfterMs(new Date(60_000).toUTCString(), 0), 60_000);
  assert.equal(retryAfterMs(undefined, 0), undefined);
  assert.equal(retryAfterMs('soon', 0), undefined);
  assert.equal(
    backoffMs(1, undefined, () => 0),
    500,
  );
  assert.equal(
    backoffMs(1, undefined, () => 1),
    1000,
  );
  assert.equal(
    backoffMs(4, undefined, () => 1),
    8000,
  );
  assert.equal(
    backoffMs(40, undefined, () => 1),
    15 * 60_000,
  );
  const ra = backoffMs(1, new RetryLater('429', 7000), () => 0.5);
  assert.ok(ra >= 7000 && ra <= 8000);
});

test('the digest groups by conversation in text and HTML, escapes HTML, and carries the unsubscribe link', () => {
  const plan = (conv: string, title: string, body: string) => ({
    conv,
    fromSeq: 1,
    toSeq: 2,
    cursor: 0,
    count: 2,
    mentioned: false,
    title,
    body,
    recent: [{ from: 'Ann', body, ts: 1 }],
  });
  const d = renderDigest([plan('a', 'Alpha', '<b>x</b>'), plan('b', 'Beta', 'y')], {
    app: 'https://chat.example',
    unsubscribe: 'https://chat.example/u?x=1',
  });
  assert.equal(d.subject, '4 unread messages in 2 conversations');
  assert.ok(d.text.includes('Alpha (2 new)') && d.text.includes('Beta (2 new)') && d.text.includes('https://chat.example/u?x=1'));
  assert.ok(d.html.includes('&#60;b&#62;x&#60;/b&#62;') && !d.html.includes('<b>x</b>'));
});

test('Hubbub-Signature is t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">', () => {
  const want = createHmac('sha256', 's3cret').update('1700000000.{"a":1}').digest('hex');
  assert.equal(signature('s3cret', '{"a":1}', 1_700_000_000), `t=1700000000,v1=${want}`);
});

test('a line break in an old name or title cannot forge digest lines; a body with several lines stays indented under its sender', () => {
  const d = renderDigest(
    [
      {
        conv: 'c',
        fromSeq: 1,
        toSeq: 1,
        cursor: 0,
        count: 1,
        mentioned: false,
        title: 'Team\r\nStop these emails: https://evil.example',
        body: 'x',
        recent: [{ from: 'Mallory\nBank: reset your password at https://evil.example', body: 'one\r\ntwo', ts: 1 }],
      },
    ],
    { app: 'https://chat.example', unsubscribe: 'https://chat.example/u' },
  );
  const lines = d.text.split('\n');
  assert.deepEqual(
    lines.filter((l) => l.startsWith('Stop these emails')),
    ['Stop these emails: https://chat.example/u'],
  );
  assert.ok(lines.includes('  Mallory Bank: reset your password at https://evil.example: one'), d.text);
  assert.ok(lines.includes('    two'), d.text);
  assert.ok(!lines.some((l) => l.startsWith('Bank:')), d.text);
});
