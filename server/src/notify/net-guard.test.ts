import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { resolveLocalhostNames, selfSigned } from '../../../test/helpers/notify-services.ts';
import { checkUrlShape, guardedAgent, isPrivateAddress, isRefusedAddress } from './net-guard.ts';
import { quietUntil } from './quiet-hours.ts';

test('private, loopback, link-local and reserved addresses are recognised; public ones are not', () => {
  for (const ip of [
    '127.0.0.1',
    '10.0.0.5',
    '172.16.9.1',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '::1',
    '::',
    'fe80::1',
    'fd00::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    'not-an-ip',
  ]) {
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

/** A GET through the agent: the status, or the error the request failed with. */
function get(url: string, agent: ReturnType<typeof guardedAgent>, opts: { autoSelectFamily?: boolean; family?: number } = {}) {
  return new Promise<number | Error>((resolve) => {
    const r = request(url, { agent, ...opts }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    r.on('error', (err) => resolve(err));
    r.end();
  });
}

test('the agent connects to host names (the lookup answered in both forms) and refuses private answers and private literals unless allowed', async () => {
  const tls = selfSigned(['hooks.localhost']);
  const server = createServer(tls, (_req, res) => res.writeHead(204).end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const open = guardedAgent({ allowPrivate: true, ca: tls.cert, lookup: resolveLocalhostNames });
  const guarded = guardedAgent({ allowPrivate: false, ca: tls.cert, lookup: resolveLocalhostNames });
  try {
    // Node asks for every address (all: true) by default, for one with autoSelectFamily off or a family set.
    for (const opts of [{}, { autoSelectFamily: false }, { family: 4 }]) {
      assert.equal(await get(`https://localhost:${port}/`, open, opts), 204, `localhost ${JSON.stringify(opts)}`);
      assert.equal(await get(`https://hooks.localhost:${port}/`, open, opts), 204, `hooks.localhost ${JSON.stringify(opts)}`);
      for (const host of ['localhost', 'hooks.localhost']) {
        const refused = await get(`https://${host}:${port}/`, guarded, opts);
        assert.ok(isRefusedAddress(refused), `${host} ${JSON.stringify(opts)}: ${String(refused)}`);
      }
    }
    for (const literal of ['127.0.0.1', '[::1]', '[::ffff:127.0.0.1]', '169.254.169.254', '10.1.2.3', '2130706433']) {
      const refused = await get(`https://${literal}:${port}/`, guarded);
      assert.ok(isRefusedAddress(refused), `${literal}: ${String(refused)}`);
    }
    // The unspecified address is refused even when private ones are allowed.
    assert.ok(isRefusedAddress(await get(`https://0.0.0.0:${port}/`, open)));
    assert.equal(isRefusedAddress(new Error('connect ECONNREFUSED 127.0.0.1:1')), false);
  } finally {
    open.destroy();
    guarded.destroy();
    server.close();
  }
});

test("quiet hours: wrapping midnight in the user's zone, postponed to the end; outside them nothing", () => {
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
