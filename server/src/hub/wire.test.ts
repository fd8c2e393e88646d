import assert from 'node:assert/strict';
import { test } from 'node:test';
import { busEvent, busFrame, parseBus } from './wire.ts';

const text = (b: Uint8Array) => Buffer.from(b).toString();

test('bus payloads keep their frame bytes exactly, multi-byte UTF-8 included', () => {
  const frame = JSON.stringify({ type: 'event', seq: 7, body: 'héllo | wörld 🎉 |' });
  const e = parseBus(Buffer.from(busEvent(7, 1_700_000_000_123, frame)));
  assert.ok(e && e.t === 'E');
  assert.equal(e.seq, 7);
  assert.equal(e.acceptedAt, 1_700_000_000_123);
  assert.equal(text(e.frame), frame);

  const f = parseBus(Buffer.from(busFrame(frame, 'usér-1')));
  assert.ok(f && f.t === 'F');
  assert.equal(f.skipUser, 'usér-1');
  assert.equal(text(f.frame), frame);

  const r = parseBus(Buffer.from(busEvent(8, 1_700_000_000_124, frame, { user: '7b0c3a52-0d7e-4a0e-9f5e-2b1d7c7f0a11', seq: 8 })));
  assert.ok(r && r.t === 'E');
  assert.equal(r.seq, 8);
  assert.equal(r.acceptedAt, 1_700_000_000_124);
  assert.deepEqual(r.read, { user: '7b0c3a52-0d7e-4a0e-9f5e-2b1d7c7f0a11', seq: 8 });
  assert.equal(text(r.frame), frame);
  assert.equal(e.read, undefined);

  const noSkip = parseBus(Buffer.from(busFrame('{"type":"typing"}')));
  assert.ok(noSkip && noSkip.t === 'F');
  assert.equal(noSkip.skipUser, '');
});

test('an event carries the time it was published, with sub-millisecond resolution, beside the time it was accepted', () => {
  const frame = JSON.stringify({ type: 'event', seq: 9, body: 'a ~ tilde | and a bar' });
  const e = parseBus(Buffer.from(busEvent(9, 1_700_000_000_123.25, frame, undefined, 1_700_000_000_125.375)));
  assert.ok(e && e.t === 'E');
  assert.equal(e.acceptedAt, 1_700_000_000_123.25);
  assert.equal(e.publishedAt, 1_700_000_000_125.375);
  assert.equal(text(e.frame), frame);
  const read = { user: '7b0c3a52-0d7e-4a0e-9f5e-2b1d7c7f0a11', seq: 9 };
  const r = parseBus(Buffer.from(busEvent(9, 1_700_000_000_123.25, frame, read, 1_700_000_000_126.5)));
  assert.ok(r && r.t === 'E');
  assert.equal(r.publishedAt, 1_700_000_000_126.5);
  assert.deepEqual(r.read, read);
  assert.equal(text(r.frame), frame);
  // A payload without it (a replica that does not time the bus) still parses, untimed.
  const old = parseBus(Buffer.from(busEvent(9, 1_700_000_000_123, frame)));
  assert.ok(old && old.t === 'E');
  assert.equal(old.publishedAt, undefined);
  assert.equal(old.acceptedAt, 1_700_000_000_123);
});

test('a malformed bus payload is refused, never half-parsed', () => {
  for (const bad of [
    '',
    'E',
    'E1',
    'E1|2',
    'X1|2|{}',
    'E0|1|{}',
    'E-3|1|{}',
    'Eabc|1|{}',
    'E1.5|1|{}',
    'F|only-one-bar',
    `E${2 ** 60}|1|{}`,
    'R1|2|u|{}',
    'R1|2|u|0|{}',
    'R1|2|u|x|{}',
    'R1|2|u|3',
  ]) {
    assert.equal(parseBus(Buffer.from(bad)), null, `payload ${JSON.stringify(bad)}`);
  }
});
