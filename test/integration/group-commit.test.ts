/**
 * Group commit on PostgreSQL: the hub's EventWriter over the PostgreSQL message store writes
 * whatever queued behind the writes in flight (any conversation) as the next statement. Two
 * store instances (two replicas, two pools) on one database, appending to the same
 * conversations at once, with cids sent to both (a client retrying on the other replica).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { openDatabase, rowsOf, type Database } from '../../server/src/db/database.ts';
import { EventWriter } from '../../server/src/hub/event-writer.ts';
import { AppendRefused, type AppendResult, type EventDraft } from '../../server/src/store/message-store.ts';
import { PostgresMessageStore } from '../../server/src/store/message-store.postgres.ts';
import { sql } from 'drizzle-orm';
import { services } from '../helpers/env.ts';
import { createDatabase } from '../helpers/postgres.ts';

let url: string;
const handles: Database[] = [];

before(async () => {
  url = await createDatabase(services.databaseUrl());
  const h = await openDatabase({ databaseUrl: url, dataDir: 'unused' });
  handles.push(h);
  await h.migrate();
});
after(async () => {
  await Promise.all(handles.map((h) => h.close()));
});

/** A replica's writer on its own pool; `sizes` gets the drafts of each store write. */
async function replica(maxInFlight?: number) {
  const h = await openDatabase({ databaseUrl: url, dataDir: 'unused' });
  handles.push(h);
  const store = new PostgresMessageStore(h);
  const sizes: number[] = [];
  const appended: { conv: string; seq: number }[] = [];
  const writer = new EventWriter(store, (e) => appended.push({ conv: e.conv, seq: e.seq }), {
    onWrite: (n) => sizes.push(n),
    ...(maxInFlight ? { maxInFlight } : {}),
  });
  return { h, store, writer, sizes, appended };
}

const message = (from: string, cid?: string, body: string = 'hello'): EventDraft => {
  const d: EventDraft = { id: randomUUID(), kind: 'message', from, ts: Date.now(), data: { body } };
  if (cid) d.cid = cid;
  return d;
};

describe('group commit on PostgreSQL', () => {
  test('5.1 with one write in flight, an append that finds none is written at once and alone; those that arrive meanwhile go together in the next commit', async () => {
    const r = await replica(1);
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    const first = r.writer.write(a, message(randomUUID()));
    assert.deepEqual(r.sizes, [1], 'written at once, no timer');
    const rest = [
      r.writer.write(b, message(randomUUID())),
      r.writer.write(c, message(randomUUID())),
      r.writer.write(a, message(randomUUID())),
    ];
    assert.deepEqual(r.sizes, [1], 'waiting for the write in flight');
    const out = await Promise.all([first, ...rest]);
    assert.deepEqual(r.sizes, [1, 3], 'the three that waited: one write');
    assert.deepEqual(
      out.map((o) => [o.event.conv, o.event.seq]),
      [
        [a, 1],
        [b, 1],
        [c, 1],
        [a, 2],
      ],
    );
  });

  test('5.1 a draft PostgreSQL refuses fails alone: the drafts of its conversation and write before and after it are stored, in order', async () => {
    const r = await replica(1);
    const [a, b] = [randomUUID(), randomUUID()];
    const sender = randomUUID();
    const first = r.writer.write(b, message(sender));
    // jsonb cannot hold NUL (the protocol refuses it; this is the store's own guard).
    const grouped = [
      r.writer.write(a, message(sender, 'c1', 'one')),
      r.writer.write(a, message(sender, 'c2', 'nul \u0000 inside')),
      r.writer.write(a, message(sender, 'c3', 'three')),
      r.writer.write(b, message(sender, 'c4', 'four')),
    ];
    const out = await Promise.allSettled([first, ...grouped]);
    assert.equal(r.sizes[1], 4, 'the four went as one write first');
    assert.deepEqual(
      out.map((o) => o.status),
      ['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
    );
    assert.ok((out[2] as PromiseRejectedResult).reason instanceof AppendRefused);
    const seqs = out.map((o) => (o.status === 'fulfilled' ? o.value.event.seq : null));
    assert.deepEqual(seqs, [1, 1, null, 2, 2]);
    const rows = rowsOf<{ conversation_id: string; seq: string | number; body: string }>(
      await r.h.db.execute(sql`select conversation_id, seq, data->>'body' as body from log_events
        where conversation_id in (${a}, ${b}) order by conversation_id = ${b}, seq`),
    );
    assert.deepEqual(
      rows.map((x) => [x.conversation_id, Number(x.seq), x.body]),
      [
        [a, 1, 'one'],
        [a, 2, 'three'],
        [b, 1, 'hello'],
        [b, 2, 'four'],
      ],
    );
    assert.deepEqual(
      r.appended.filter((e) => e.conv === a),
      [
        { conv: a, seq: 1 },
        { conv: a, seq: 2 },
      ],
    );
  });

  test('5.1/5.4 two replicas, 80 senders on 6 shared conversations, cids sent to both: gapless seqs, one row per cid, acks in send order, batches formed', async () => {
    const [x, y] = [await replica(), await replica()];
    const convs = Array.from({ length: 6 }, () => randomUUID());
    const PER_SENDER = 12;
    type Ack = { conv: string; from: string; cid: string; seq: number; id: string };
    const acks: Ack[] = [];
    const failures: unknown[] = [];
    const note = (conv: string, from: string, cid: string, r: AppendResult) =>
      acks.push({ conv, from, cid, seq: r.event.seq, id: r.event.id });
    // A sender on one replica: one send at a time (await its ack), as a socket client does; every
    // fourth send is also made on the other replica at the same moment (a retry after a reconnect).
    const sender = async (k: number) => {
      const [home, away] = k % 2 ? [x, y] : [y, x];
      const from = randomUUID();
      const conv = convs[k % convs.length]!;
      let last = 0;
      for (let i = 0; i < PER_SENDER; i++) {
        const cid = `m${i}`;
        const sends = [home.writer.write(conv, message(from, cid))];
        if (i % 4 === 3) sends.push(away.writer.write(conv, message(from, cid)));
        const out = await Promise.allSettled(sends);
        for (const o of out) {
          if (o.status === 'rejected') failures.push(o.reason);
          else note(conv, from, cid, o.value);
        }
        const mine = out[0]!;
        if (mine.status === 'fulfilled') {
          assert.ok(mine.value.event.seq > last, 'a sender sees its acks in send order');
          last = mine.value.event.seq;
        }
      }
    };
    await Promise.all(Array.from({ length: 80 }, (_, k) => sender(k)));
    assert.deepEqual(failures, [], 'no send failed (no deadlock, no conflict left over)');

    // One stored event per (conversation, sender, cid), and every ack of a cid names it.
    const byCid = new Map<string, Ack>();
    for (const a of acks) {
      const key = `${a.conv}/${a.from}/${a.cid}`;
      const seen = byCid.get(key);
      if (seen) assert.deepEqual([a.seq, a.id], [seen.seq, seen.id], 'both replicas ack a cid with the one stored event');
      else byCid.set(key, a);
    }
    assert.equal(byCid.size, 80 * PER_SENDER);
    const rows = rowsOf<{ conversation_id: string; sender_id: string; cid: string; seq: string | number }>(
      await x.h.db.execute(sql`select conversation_id, sender_id, cid, seq from log_events
        where conversation_id in (${sql.join(
          convs.map((c) => sql`${c}`),
          sql`, `,
        )}) order by conversation_id, seq`),
    );
    assert.equal(rows.length, 80 * PER_SENDER, 'one row per cid');
    for (const conv of convs) {
      const seqs = rows.filter((r) => r.conversation_id === conv).map((r) => Number(r.seq));
      assert.deepEqual(
        seqs,
        seqs.map((_, i) => i + 1),
        'gapless from 1',
      );
    }
    for (const r of rows) assert.equal(byCid.get(`${r.conversation_id}/${r.sender_id}/${r.cid}`)?.seq, Number(r.seq));

    // Each replica told its hub of each new event once, in seq order per conversation.
    const told = [...x.appended, ...y.appended];
    assert.equal(told.length, 80 * PER_SENDER);
    for (const r of [x, y])
      for (const conv of convs) {
        const seqs = r.appended.filter((e) => e.conv === conv).map((e) => e.seq);
        assert.deepEqual(
          seqs,
          [...seqs].sort((p, q) => p - q),
        );
      }

    // Group commit happened (the writer's own setting): each replica wrote fewer statements than drafts.
    for (const r of [x, y]) {
      const drafts = r.sizes.reduce((p, q) => p + q, 0);
      assert.ok(drafts / r.sizes.length > 2, `drafts per write ${drafts}/${r.sizes.length}`);
      assert.ok(Math.max(...r.sizes) > 10);
    }
  });
});
