import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { channels } from '../../server/src/bus/bus.ts';
import { RedisBus } from '../../server/src/bus/bus.redis.ts';
import { Confirmations } from '../../server/src/hub/confirmations.ts';
import { createLogger } from '../../server/src/observability/logger.ts';
import { services } from '../helpers/env.ts';

/**
 * The read-your-writes barrier on real Redis: three buses stand for three hubs. A message is
 * confirmed once every hub that received it (as Redis counts them) has confirmed, and a hub that
 * never confirms costs the sender the timeout, no more.
 */
describe('confirmed publish on Redis', () => {
  const logger = createLogger({ level: 'silent', replicaId: 'confirm-test' });

  async function hubs(n: number, prefix: string) {
    const buses = Array.from({ length: n }, () => new RedisBus(services.redisUrl(), { logger, prefix }));
    await Promise.all(buses.map((b) => b.ready()));
    return buses;
  }

  test('resolves after the last of the receiving hubs confirms, never before; a hub that stays silent costs the timeout', async () => {
    const prefix = `t${randomBytes(4).toString('hex')}:`;
    const [sender, r1, r2] = await hubs(3, prefix);
    try {
      const confirmations = new Confirmations({ bus: sender!, channel: channels.confirm('sender'), timeoutMs: 1500, logger });
      sender!.onMessage((channel, payload) => {
        if (channel === channels.confirm('sender')) confirmations.confirmed(payload.toString());
      });
      // Each receiver holds its confirmation until released: the publish must wait for both.
      const release: (() => void)[] = [];
      let arrived = () => {};
      /** Resolves once `n` confirmations are held back. */
      const held = (n: number) =>
        new Promise<void>((resolve) => {
          arrived = () => {
            if (release.length >= n) resolve();
          };
          arrived();
        });
      const silent = new Set<typeof r1>();
      for (const r of [r1!, r2!]) {
        r.onMessage((_channel, payload) => {
          const m = JSON.parse(payload.toString()) as { confirm: { to: string; id: string } };
          if (!silent.has(r)) release.push(() => void r.publish(m.confirm.to, m.confirm.id));
          arrived();
        });
        await r.subscribe(channels.membership);
      }
      let done = false;
      const p = confirmations.publish(channels.membership, (confirm) => JSON.stringify({ confirm })).then(() => (done = true));
      await held(2);
      release.shift()!();
      // Nothing to await for "not resolved": the first confirmation is given a moment to arrive.
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(done, false, 'one of two hubs confirmed: still waiting');
      const t0 = Date.now();
      release.shift()!();
      await p;
      assert.ok(Date.now() - t0 < 1000, 'resolved by the last confirmation, not the timeout');

      silent.add(r2!);
      const t1 = Date.now();
      const q = confirmations.publish(channels.membership, (confirm) => JSON.stringify({ confirm }));
      await held(1);
      release.shift()!();
      await q;
      const waited = Date.now() - t1;
      assert.ok(waited >= 1400 && waited < 3000, `a silent hub costs the timeout (${waited} ms)`);
    } finally {
      await Promise.all([sender, r1, r2].map((b) => b!.close()));
    }
  });
});
