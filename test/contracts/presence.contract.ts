/**
 * The Presence contract: one set of test bodies that every backend passes (presence.test.ts runs
 * it in memory and on Redis). Spec id 5.6: online while any socket is open anywhere, offline
 * within seconds after the last closes or its replica dies.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe } from 'node:test';
import type { Presence } from '../../server/src/presence/presence.ts';
import { fixtureTest } from './fixture-test.ts';

export interface PresenceFixture {
  presence: Presence;
  /**
   * Another replica on the same backend, and a way to kill it without a clean shutdown (its
   * heartbeat stops). Absent where the backend is one process.
   */
  replica?: () => Promise<{ presence: Presence; kill(): void }>;
  cleanup(): Promise<void>;
}

const users = (n: number) => Array.from({ length: n }, () => randomUUID());

export function registerPresenceContractTests(name: string, make: () => Promise<PresenceFixture>) {
  describe(`Presence contract on ${name}`, () => {
    const run = fixtureTest(make);

    run(
      '5.6 the first socket makes a user online, the last close makes them offline; sockets between change nothing',
      async ({ presence: p }) => {
        const [u] = users(1) as [string];
        assert.equal((await p.connected(u, [])).first, true);
        assert.equal((await p.connected(u, [])).first, false, 'a second device');
        assert.deepEqual([...(await p.online([u]))], [u]);
        assert.equal(await p.disconnected(u), false, 'one device still open');
        assert.deepEqual([...(await p.online([u]))], [u]);
        assert.equal(await p.disconnected(u), true);
        assert.equal((await p.online([u])).size, 0);
        assert.equal((await p.connected(u, [])).first, true, 'online again');
      },
    );

    run('5.6 a new socket is told which of its contacts are online, and online() answers for any list', async ({ presence: p }) => {
      const [me, a, b, c] = users(4) as [string, string, string, string];
      await p.connected(a, []);
      await p.connected(b, []);
      await p.disconnected(b);
      const { first, online } = await p.connected(me, [a, b, c]);
      assert.equal(first, true);
      assert.deepEqual([...online], [a]);
      assert.deepEqual(new Set(await p.online([a, b, c, me])), new Set([a, me]));
      assert.equal((await p.online([])).size, 0);
    });

    run('5.6 a snapshot of more contacts than one call reads is complete', async ({ presence: p }) => {
      const contacts = users(1_203);
      const on = contacts.filter((_, i) => i % 7 === 0);
      for (const u of on) await p.connected(u, []);
      const { online } = await p.connected(randomUUID(), contacts);
      assert.deepEqual(new Set(online), new Set(on));
      assert.deepEqual(new Set(await p.online(contacts)), new Set(on));
    });

    run('5.6 a user with sockets on two replicas stays online until the last closes on either', async (f) => {
      if (!f.replica) return assert.equal((await f.presence.online([randomUUID()])).size, 0, 'one process: nobody else');
      const other = (await f.replica()).presence;
      const [u, watcher] = users(2) as [string, string];
      assert.equal((await f.presence.connected(u, [])).first, true);
      assert.equal((await other.connected(u, [])).first, false, 'already online on the first replica');
      assert.deepEqual([...(await other.connected(watcher, [u])).online], [u]);
      assert.equal(await f.presence.disconnected(u), false);
      assert.deepEqual([...(await f.presence.online([u]))], [u]);
      assert.equal(await other.disconnected(u), true);
      assert.equal((await f.presence.online([u])).size, 0);
    });

    run('5.6 when a replica dies, its users go offline within seconds and a surviving replica reports each once', async (f) => {
      if (!f.replica) return assert.equal(await f.presence.disconnected(randomUUID()), true, 'one process: no socket, offline');
      const dying = await f.replica();
      const [gone, kept] = users(2) as [string, string];
      await dying.presence.connected(gone, []);
      await dying.presence.connected(kept, []);
      await f.presence.connected(kept, []);
      const reported: string[] = [];
      const offline = new Promise<void>((resolve) =>
        f.presence.onExpired((u) => {
          reported.push(u);
          resolve();
        }),
      );
      const killedAt = Date.now();
      dying.kill();
      await offline;
      assert.ok(Date.now() - killedAt < 5_000, `reported after ${Date.now() - killedAt} ms`);
      assert.deepEqual(reported, [gone], 'a user still online elsewhere is not reported');
      assert.deepEqual([...(await f.presence.online([gone, kept]))], [kept]);
    });
  });
}
