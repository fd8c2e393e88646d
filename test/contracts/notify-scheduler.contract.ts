/**
 * The NotifyScheduler contract: one set of test bodies that every adapter passes
 * (notify-scheduler.test.ts runs it on the in-process scheduler and on BullMQ with its workers).
 * Each run is seen where the processors start (the delivery log's first read), with real
 * processors on a real database: users that do not exist make every job end as skipped.
 * Spec id 8: notifications wait out the channel's window and coalesce per conversation (email:
 * one digest per user).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe } from 'node:test';
import type { NotifyChannel } from '../../server/src/notify/notify-jobs.ts';
import type { NotifyScheduler } from '../../server/src/notify/notify-scheduler.ts';
import { fixtureTest } from './fixture-test.ts';

/** One processor run: which job key it ran for. */
export interface Run {
  channel: NotifyChannel;
  user: string;
  conv: string | null;
  at: number;
}

export interface SchedulerFixture {
  scheduler: NotifyScheduler;
  /** Every processor run so far, in order. */
  runs: Run[];
  /** Resolves once `n` runs happened. */
  ran(n: number): Promise<void>;
  cleanup(): Promise<void>;
}

/** Every channel's window in these tests. */
export const DELAY_MS = 150;

export function registerNotifySchedulerContractTests(name: string, make: () => Promise<SchedulerFixture>) {
  describe(`NotifyScheduler contract on ${name}`, () => {
    const run = fixtureTest(make);
    const key = (r: Run) => `${r.channel}:${r.user}:${r.conv ?? '*'}`;
    /** Nothing more runs: the absence of a duplicate needs the window to pass, twice over. */
    const quiet = () => sleep(DELAY_MS * 3);

    run('8 a burst for one (user, conversation) runs one job; another conversation or user runs its own', async (f) => {
      const [u1, u2, c1, c2] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
      await f.scheduler.enqueue('push', [
        { user: u1, conv: c1, seq: 1 },
        { user: u1, conv: c1, seq: 2 },
      ]);
      await f.scheduler.enqueue('push', [
        { user: u1, conv: c1, seq: 3 },
        { user: u1, conv: c2, seq: 1 },
      ]);
      await f.scheduler.enqueue('push', [{ user: u2, conv: c1, seq: 3 }]);
      await f.ran(3);
      await quiet();
      assert.deepEqual(f.runs.map(key).sort(), [`push:${u1}:${c1}`, `push:${u1}:${c2}`, `push:${u2}:${c1}`].sort());
    });

    run('8 email is one digest per user, whatever conversations its jobs name', async (f) => {
      const [u1, u2] = [randomUUID(), randomUUID()];
      await f.scheduler.enqueue('email', [
        { user: u1, conv: randomUUID(), seq: 1 },
        { user: u1, conv: randomUUID(), seq: 1 },
        { user: u2, conv: randomUUID(), seq: 4 },
      ]);
      await f.ran(2);
      await quiet();
      assert.deepEqual(f.runs.map((r) => `${r.channel}:${r.user}`).sort(), [`email:${u1}`, `email:${u2}`].sort());
    });

    run('8 a job waits out its channel window before it runs', async (f) => {
      const enqueuedAt = Date.now();
      await f.scheduler.enqueue('webhook', [{ user: randomUUID(), conv: randomUUID(), seq: 1 }]);
      await f.ran(1);
      assert.ok(f.runs[0]!.at - enqueuedAt >= DELAY_MS - 10, `ran after ${f.runs[0]!.at - enqueuedAt} ms`);
    });

    run('8 a job for the same key after the first has run is a new job, not dropped', async (f) => {
      const [u, c] = [randomUUID(), randomUUID()];
      await f.scheduler.enqueue('push', [{ user: u, conv: c, seq: 1 }]);
      await f.ran(1);
      await f.scheduler.enqueue('push', [{ user: u, conv: c, seq: 2 }]);
      await f.ran(2);
      assert.deepEqual(f.runs.map(key), [`push:${u}:${c}`, `push:${u}:${c}`]);
    });
  });
}
