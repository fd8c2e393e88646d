import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BlockedAddressError, checkUrlShape, guardedLookup, isPrivateAddress } from './net-guard.ts';
import { quietUntil } from './quiet-hours.ts';

test('private, loopback, link-local and reserved addresses are recognised; public ones are not', () => {
  for (const ip of ['127.0.0.1', '10.0.0.5', '172.16.9.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', '::', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', 'not-an-ip']) {
    assert.equal(isPrivateAddress(ip), true, ip);
  }
  for (const ip of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) assert.equal(isPrivateAddress(ip), false, ip);
});

test('URL shape: https only, no credentials, literal private hosts refused unless allowed', () => {
  assert.throws(() => checkUrlShape('http://example.com/', false));
  assert.throws(() => checkUrlShape('https://a:b@example.com/', false));
  assert.throws(() => checkUrlShape('https://[::1]:8443/', false));
  assert.throws(() => checkUrlShape('https://2130706433/', false)); // 127.0.0.1 spelled as a number
  assert.equal(checkUrlShape('https://127.0.0.1:8443/x', true).port, '8443');
  assert.equal(checkUrlShape('https://example.com/x', false).hostname, 'example.com');
});

test('the connect-time lookup refuses a name that resolves to a private address (DNS rebinding), and allows it when configured', async () => {
  const refused = await new Promise<Error | null>((r) => guardedLookup(false)('localhost', { family: 4 }, (err) => r(err)));
  assert.ok(refused instanceof BlockedAddressError);
  const allowed = await new Promise<string>((r, j) => guardedLookup(true)('localhost', { family: 4 }, (err, a) => (err ? j(err) : r(a as string))));
  assert.equal(allowed, '127.0.0.1');
});

test('quiet hours: wrapping midnight in the user\'s zone, postponed to the end; outside them nothing', () => {
  const q = { start: '22:00', end: '07:00', timezone: 'America/New_York' };
  // 23:15 in New York on 1 July (EDT, UTC-4) is 03:15 UTC; the end is 07:00 EDT = 11:00 UTC.
  assert.equal(quietUntil(new Date('2026-07-02T03:15:00Z'), q)?.toISOString(), '2026-07-02T11:00:00.000Z');
  // 06:59 local, still quiet: ends a minute later.
  assert.equal(quietUntil(new Date('2026-07-02T10:59:00Z'), q)?.toISOString(), '2026-07-02T11:00:00.000Z');
  assert.equal(quietUntil(new Date('2026-07-02T11:00:00Z'), q), null);
  assert.equal(quietUntil(new Date('2026-07-02T16:00:00Z'), q), null);
  // Across the DST change (1 Nov 2026, 02:00 EDT → 01:00 EST): 07:00 EST is 12:00 UTC.
  assert.equal(quietUntil(new Date('2026-11-01T04:00:00Z'), q)?.toISOString(), '2026-11-01T12:00:00.000Z');
  assert.equal(quietUntil(new Date('2026-07-02T03:15:00Z'), { start: '09:00', end: '17:00', timezone: 'UTC' }), null);
});
