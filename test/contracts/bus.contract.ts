/**
 * The Bus contract: one set of test bodies that every backend passes (bus.test.ts runs it on the
 * in-process bus and on Redis pub/sub). Spec ids are in the test names: 1 (the bus fans out
 * between replicas) and 5.2 (every event reaches every subscribed hub, in order).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe } from 'node:test';
import type { Bus } from '../../server/src/bus/bus.ts';
import { fixtureTest } from './fixture-test.ts';

export interface BusFixture {
  bus: Bus;
  /** A second bus on the same backend (another replica); absent where the backend is one process. */
  second?: () => Promise<Bus>;
  cleanup(): Promise<void>;
}

/** What a bus hands its handler, collected; `next(n)` resolves once n messages are there. */
function collect(bus: Bus) {
  const got: { channel: string; payload: Buffer }[] = [];
  let waiter: { n: number; resolve: () => void } | undefined;
  bus.onMessage((channel, payload) => {
    got.push({ channel, payload });
    if (waiter && got.length >= waiter.n) waiter.resolve();
  });
  return {
    got,
    next: (n: number) => (got.length >= n ? Promise.resolve() : new Promise<void>((resolve) => (waiter = { n, resolve }))),
  };
}

export function registerBusContractTests(name: string, make: () => Promise<BusFixture>) {
  describe(`Bus contract on ${name}`, () => {
    const run = fixtureTest(make);

    run('1 a subscribed channel receives the published bytes with its name, strings and buffers alike', async ({ bus }) => {
      const c = collect(bus);
      const ch = `c:${randomUUID()}`;
      await bus.subscribe(ch);
      await bus.publish(ch, 'héllo');
      await bus.publish(ch, Buffer.from([0, 1, 255]));
      await c.next(2);
      assert.deepEqual(
        c.got.map((m) => m.channel),
        [ch, ch],
      );
      assert.ok(Buffer.isBuffer(c.got[0]!.payload));
      assert.equal(c.got[0]!.payload.toString(), 'héllo');
      assert.deepEqual([...c.got[1]!.payload], [0, 1, 255]);
    });

    run('5.2 messages on one channel arrive in publish order', async ({ bus }) => {
      const c = collect(bus);
      const ch = `c:${randomUUID()}`;
      await bus.subscribe(ch);
      const n = 200;
      await Promise.all(Array.from({ length: n }, (_, i) => bus.publish(ch, String(i))));
      await c.next(n);
      assert.deepEqual(
        c.got.map((m) => Number(m.payload.toString())),
        Array.from({ length: n }, (_, i) => i),
      );
    });

    run('1 publishCounted counts the listening hub, and 0 when nobody listens; an unheard message is dropped', async ({ bus }) => {
      const c = collect(bus);
      const [heard, unheard] = [`c:${randomUUID()}`, `c:${randomUUID()}`];
      await bus.subscribe(heard);
      assert.equal(await bus.publishCounted(unheard, 'x'), 0);
      assert.equal(await bus.publishCounted(heard, 'y'), 1);
      await c.next(1);
      assert.deepEqual(
        c.got.map((m) => [m.channel, m.payload.toString()]),
        [[heard, 'y']],
      );
    });

    run('1 after unsubscribe a channel receives nothing; other channels still do', async ({ bus }) => {
      const c = collect(bus);
      const [gone, kept] = [`c:${randomUUID()}`, `c:${randomUUID()}`];
      await bus.subscribe(gone);
      await bus.subscribe(kept);
      await bus.unsubscribe(gone);
      assert.equal(await bus.publishCounted(gone, 'x'), 0);
      await bus.publish(kept, 'y');
      await c.next(1);
      assert.deepEqual(
        c.got.map((m) => m.channel),
        [kept],
      );
    });

    run('1 a prefix subscription receives every channel under it, its glob characters taken literally', async ({ bus }) => {
      const c = collect(bus);
      const prefix = `u*${randomUUID()}?:`;
      await bus.subscribePrefix(prefix);
      const [a, b] = [prefix + 'a', prefix + 'b'];
      assert.equal(await bus.publishCounted(`u-${prefix.slice(2)}x`, 'not mine'), 0, '* in the prefix is not a wildcard');
      await bus.publish(a, '1');
      await bus.publish(b, '2');
      await c.next(2);
      assert.deepEqual(
        c.got.map((m) => [m.channel, m.payload.toString()]),
        [
          [a, '1'],
          [b, '2'],
        ],
      );
    });

    run("1 publish never calls the handler inside the publisher's own call", async ({ bus }) => {
      const c = collect(bus);
      const ch = `c:${randomUUID()}`;
      await bus.subscribe(ch);
      const p = bus.publish(ch, 'x');
      assert.equal(c.got.length, 0, 'delivered synchronously');
      await p;
      await c.next(1);
    });

    run('5.2 another replica subscribed to the channel receives what this one publishes; each hub counts once', async (f) => {
      if (!f.second) return assert.equal(await f.bus.publishCounted(`c:${randomUUID()}`, 'x'), 0, 'one process: nobody else listens');
      const other = await f.second();
      const c = collect(other);
      const mine = collect(f.bus);
      const ch = `c:${randomUUID()}`;
      await other.subscribe(ch);
      await f.bus.subscribe(ch);
      assert.equal(await f.bus.publishCounted(ch, 'both'), 2);
      await Promise.all([c.next(1), mine.next(1)]);
      assert.equal(c.got[0]!.payload.toString(), 'both');
      assert.equal(mine.got[0]!.payload.toString(), 'both');
    });
  });
}
