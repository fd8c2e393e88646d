/**
 * The MessageStore contract (the delivery contract's storage half): one set of test bodies that every backend passes.
 * Spec ids are in the test names. message-store.test.ts runs it on PGlite, PostgreSQL and
 * Cassandra.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  appendBatches,
  carriesText,
  type AppendResult,
  type EventDraft,
  type EventKind,
  type MessageStore,
  type StoredEvent,
} from '../../server/src/store/message-store.ts';

export interface MessageStoreFixture {
  store: MessageStore;
  /** A second instance on the same storage (another hub replica). Without it, `store` plays both. */
  second?: () => Promise<MessageStore>;
  /** Closes every store and handle the fixture opened, and drops its storage. */
  cleanup(): Promise<void>;
}

/** Events of the long log: more than two Cassandra buckets (BUCKET_SIZE 1000), so reads cross three. */
export const LONG_LOG_EVENTS = 2_600;

let clock = Date.UTC(2025, 0, 1);
/** Distinct, increasing millisecond timestamps. */
const nextTs = () => ++clock;

export function draft(over: Partial<EventDraft> = {}): EventDraft {
  const d: EventDraft = { id: randomUUID(), kind: 'message', from: randomUUID(), ts: nextTs(), data: { body: 'hello' }, ...over };
  if (d.cid === undefined) delete d.cid; // stored events omit an absent cid: keep drafts comparable
  return d;
}

/** Every event of a conversation, paging through read(). */
export async function readAll(store: MessageStore, conv: string): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  for (;;) {
    const page = await store.read(conv, { afterSeq: out.at(-1)?.seq ?? 0, limit: 1000 });
    out.push(...page);
    if (page.length < 1000) return out;
  }
}

/** appendBatches, failing on the first refused batch. */
async function appendAll(store: MessageStore, batches: { conv: string; drafts: EventDraft[] }[]): Promise<AppendResult[][]> {
  return (await appendBatches(store, batches)).map((o) => {
    if (o.status === 'rejected') throw o.reason;
    return o.value;
  });
}

const seqsOf = (events: { seq: number }[]) => events.map((e) => e.seq);
const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

/** mulberry32: a small deterministic PRNG, so a failing fuzz seed replays. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function registerMessageStoreContract(name: string, factory: () => Promise<MessageStoreFixture>) {
  describe(`MessageStore contract: ${name}`, () => {
    let fx: MessageStoreFixture;
    let store: MessageStore;
    let other: MessageStore;

    before(async () => {
      fx = await factory();
      store = fx.store;
      other = fx.second ? await fx.second() : fx.store;
    });
    after(async () => {
      await fx?.cleanup();
    });

    test('5.1 seqs are consecutive from 1 per conversation; conversations are independent', async () => {
      const [a, b] = [randomUUID(), randomUUID()];
      const r1 = await store.append(a, [draft()]);
      const r2 = await store.append(b, [draft(), draft()]);
      const r3 = await store.append(a, [draft(), draft(), draft()]);
      assert.deepEqual(seqsOf(r1.map((r) => r.event)), [1]);
      assert.deepEqual(seqsOf(r2.map((r) => r.event)), [1, 2]);
      assert.deepEqual(seqsOf(r3.map((r) => r.event)), [2, 3, 4]);
      assert.ok([...r1, ...r2, ...r3].every((r) => !r.duplicate));
      assert.deepEqual(seqsOf(await readAll(store, a)), [1, 2, 3, 4]);
      assert.deepEqual(seqsOf(await readAll(store, b)), [1, 2]);
    });

    test('5.1 a batch keeps draft order, and events read back exactly as appended', async () => {
      const conv = randomUUID();
      const sender = randomUUID();
      const drafts: EventDraft[] = [
        draft({ from: sender, cid: 'c-1', data: { body: 'hi', replyTo: null, mentions: [sender], n: 1.5, nested: { ok: true } } }),
        draft({ kind: 'system', from: null, data: { text: 'welcome' } }),
        draft({ kind: 'reaction', from: sender, data: { seq: 1, emoji: '👍' } }),
        draft({ from: sender, data: { body: 'ünïcödé "quotes" \\ and 🎉' } }),
      ];
      const results = await store.append(conv, drafts);
      assert.deepEqual(
        results.map((r) => r.event),
        drafts.map((d, i) => ({ ...d, conv, seq: i + 1 })),
      );
      const read = await store.read(conv, { limit: 10 });
      assert.deepEqual(
        read,
        results.map((r) => r.event),
      );
      assert.equal('cid' in read[1]!, false, 'cid is omitted when there is none');
      assert.equal(read[0]!.cid, 'c-1');
      assert.equal(read[1]!.from, null);
    });

    test('5.4 a stored cid returns the original and stores nothing', async () => {
      const conv = randomUUID();
      const from = randomUUID();
      const [first] = await store.append(conv, [draft({ from, cid: 'k1', data: { body: 'original' } })]);
      const again = await store.append(conv, [draft({ from, cid: 'k1', data: { body: 'retry' } }), draft({ from, cid: 'k2' })]);
      assert.equal(again[0]!.duplicate, true);
      assert.deepEqual(again[0]!.event, first!.event);
      assert.equal(again[1]!.duplicate, false);
      assert.equal(again[1]!.event.seq, 2);
      const fromOther = await other.append(conv, [draft({ from, cid: 'k1' })]);
      assert.equal(fromOther[0]!.duplicate, true);
      assert.deepEqual(fromOther[0]!.event, first!.event);
      assert.deepEqual(seqsOf(await readAll(store, conv)), [1, 2]);
    });

    test('5.4 the same cid twice in one batch stores once', async () => {
      const conv = randomUUID();
      const from = randomUUID();
      const rs = await store.append(conv, [
        draft({ from, cid: 'a' }),
        draft({ from, cid: 'b' }),
        draft({ from, cid: 'a' }),
        draft({ from }),
      ]);
      assert.deepEqual(
        rs.map((r) => r.duplicate),
        [false, false, true, false],
      );
      assert.deepEqual(rs[2]!.event, rs[0]!.event);
      assert.deepEqual(seqsOf(rs.map((r) => r.event)), [1, 2, 1, 3]);
      assert.equal((await readAll(store, conv)).length, 3);
    });

    test('5.4 the same cid from another sender, or in another conversation, is another message', async () => {
      const [c1, c2] = [randomUUID(), randomUUID()];
      const [alice, bob] = [randomUUID(), randomUUID()];
      const rs = await store.append(c1, [draft({ from: alice, cid: 'same' }), draft({ from: bob, cid: 'same' })]);
      const rs2 = await store.append(c2, [draft({ from: alice, cid: 'same' })]);
      assert.ok([...rs, ...rs2].every((r) => !r.duplicate));
      // Drafts without a cid never deduplicate, whatever their content.
      const bare = draft({ from: alice });
      const rs3 = await store.append(c1, [bare, { ...bare, id: randomUUID() }]);
      assert.ok(rs3.every((r) => !r.duplicate));
      assert.deepEqual(seqsOf(await readAll(store, c1)), [1, 2, 3, 4]);
    });

    test('5.1 reads: afterSeq, beforeSeq, both, newest-N-before and limit, across buckets', async () => {
      const conv = randomUUID();
      const from = randomUUID();
      for (let done = 0; done < LONG_LOG_EVENTS; done += 650) {
        const n = Math.min(650, LONG_LOG_EVENTS - done);
        await store.append(
          conv,
          Array.from({ length: n }, (_, i) => draft({ from, data: { body: `m${done + i + 1}` } })),
        );
      }
      const N = LONG_LOG_EVENTS;
      const check = (events: StoredEvent[], expected: number[]) => {
        assert.deepEqual(seqsOf(events), expected);
        for (const e of events) assert.equal(e.data.body, `m${e.seq}`);
      };
      check(await store.read(conv, { limit: 5 }), [1, 2, 3, 4, 5]);
      check(await store.read(conv, { afterSeq: 990, limit: 25 }), range(991, 1015));
      check(await store.read(conv, { afterSeq: 995, beforeSeq: 2006, limit: 5000 }), range(996, 2005));
      check(await store.read(conv, { afterSeq: 995, beforeSeq: 2006, limit: 20 }), range(996, 1015));
      check(await store.read(conv, { beforeSeq: 2003, limit: 1010 }), range(993, 2002));
      check(await store.read(conv, { beforeSeq: 4, limit: 10 }), [1, 2, 3]);
      check(await store.read(conv, { beforeSeq: 1_000_000, limit: 3 }), [N - 2, N - 1, N]);
      check(await store.read(conv, { afterSeq: N - 2, limit: 100 }), [N - 1, N]);
      check(await store.read(conv, { afterSeq: 1999, beforeSeq: 2001, limit: 10 }), [2000]);
      check(await store.read(conv, { afterSeq: 999, beforeSeq: 1001, limit: 10 }), [1000]);
      check(await store.read(conv, { afterSeq: 1000, beforeSeq: 1001, limit: 10 }), []);
      check(await store.read(conv, { afterSeq: N, limit: 10 }), []);
      check(await readAll(store, conv), range(1, N));
      assert.deepEqual(await store.read(randomUUID(), { limit: 10 }), []);
      assert.deepEqual(await store.read(randomUUID(), { beforeSeq: 10, limit: 10 }), []);
    });

    test('5.5 lastSeqs gives each head, 0 for conversations without events', async () => {
      const [a, b, unknown] = [randomUUID(), randomUUID(), randomUUID()];
      await store.append(a, [draft(), draft(), draft()]);
      await other.append(b, [draft({ kind: 'member', data: { joined: true } })]);
      const heads = await store.lastSeqs([a, b, unknown]);
      assert.equal(heads.get(a), 3);
      assert.equal(heads.get(b), 1);
      assert.equal(heads.get(unknown), 0);
      assert.equal((await store.lastSeqs([])).size, 0);
    });

    test('5.9 heads gives each head with its epoch: 1 for a log never rewound, {0, 1} for one without events', async () => {
      const [a, unknown] = [randomUUID(), randomUUID()];
      await store.append(a, [draft(), draft()]);
      const heads = await other.heads([a, unknown]);
      assert.deepEqual(heads.get(a), { seq: 2, epoch: 1 });
      assert.deepEqual(heads.get(unknown), { seq: 0, epoch: 1 });
      assert.equal((await store.heads([])).size, 0);
    });

    test('5.9 rewind gives every log a higher epoch with its head as restoredSeq, and a named conversation without a log one too', async () => {
      const [a, b, empty] = [randomUUID(), randomUUID(), randomUUID()];
      await store.append(a, [draft(), draft(), draft()]);
      await other.append(b, [draft()]);
      const now = Date.now();
      const epoch = Math.floor(now / 1000);
      const first = await store.rewind([a, empty], now);
      assert.equal(first.epoch, epoch);
      assert.ok(first.conversations >= 3, `rewound ${first.conversations}`);
      const heads = await other.heads([a, b, empty]);
      assert.deepEqual(heads.get(a), { seq: 3, epoch, restoredSeq: 3 });
      assert.deepEqual(heads.get(b), { seq: 1, epoch, restoredSeq: 1 });
      assert.deepEqual(heads.get(empty), { seq: 0, epoch, restoredSeq: 0 }, 'a conversation with nothing restored is rewound too');
      // The same second again, then a clock behind the epoch: each rewind still moves forward.
      const second = await other.rewind([a, empty], now);
      assert.equal(second.conversations, first.conversations, 'each log counted once, the named one now among them');
      const third = await store.rewind([], now - 86_400_000);
      assert.equal(third.conversations, first.conversations);
      const later = await store.heads([a, b, empty]);
      assert.deepEqual(
        [a, b, empty].map((c) => later.get(c)!.epoch),
        [epoch + 2, epoch + 2, epoch + 2],
      );
      assert.equal(later.get(a)!.restoredSeq, 3);
    });

    test('5.9 after a rewind, appends continue from the restored head in the new epoch; a log never rewound stays at epoch 1', async () => {
      const [a, fresh] = [randomUUID(), randomUUID()];
      await store.append(a, [draft(), draft()]);
      const { epoch } = await store.rewind([]);
      const [next] = await other.append(a, [draft()]);
      assert.equal(next!.event.seq, 3);
      await store.append(fresh, [draft()]);
      const heads = await store.heads([a, fresh]);
      assert.deepEqual(heads.get(a), { seq: 3, epoch, restoredSeq: 2 });
      assert.deepEqual(heads.get(fresh), { seq: 1, epoch: 1 }, 'a log first written after the rewind');
      assert.equal((await other.lastSeqs([a])).get(a), 3);
    });

    test('5.5 lastMessages gives the newest message, ignoring other kinds', async () => {
      const [a, b, none, unknown] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
      await store.append(a, [draft({ data: { body: 'one' } })]);
      const [, m2] = await store.append(a, [draft({ kind: 'member' }), draft({ data: { body: 'two' } }), draft({ kind: 'reaction' })]);
      await store.append(a, [draft({ kind: 'edit', data: { seq: 3, body: 'edited' } }), draft({ kind: 'system', from: null })]);
      const [b1] = await other.append(b, [draft({ data: { body: 'b' } })]);
      await store.append(none, [draft({ kind: 'member' }), draft({ kind: 'system', from: null })]);
      const last = await store.lastMessages([a, b, none, unknown]);
      assert.deepEqual(last.get(a), m2!.event);
      assert.deepEqual(last.get(b), b1!.event);
      assert.equal(last.has(none), false);
      assert.equal(last.has(unknown), false);
    });

    test('redact erases bodies in place; seqs, kinds and other fields stay', async () => {
      const conv = randomUUID();
      const rs = await store.append(conv, [
        draft({ data: { body: 'secret', mentions: ['x'] } }),
        draft({ data: { body: 'keep' } }),
        draft({ data: { body: 'also secret' } }),
        draft({ kind: 'edit', data: { target: 1, body: 'edited secret', mentions: ['x'] } }),
        draft({ kind: 'system', data: { subtype: 'tip', amount: 5, note: 'secret note' } }),
      ]);
      await store.redact(conv, [1, 3, 4, 5, 99]);
      await store.redact(conv, []);
      const events = await readAll(store, conv);
      assert.deepEqual(seqsOf(events), [1, 2, 3, 4, 5]);
      assert.deepEqual(events[0]!.data, { body: null, redacted: true, mentions: ['x'] });
      assert.deepEqual(events[1]!.data, { body: 'keep' });
      assert.deepEqual(events[2]!.data, { body: null, redacted: true });
      assert.deepEqual(events[3]!.data, { target: 1, body: null, redacted: true, mentions: ['x'] }, 'an edit’s text');
      assert.deepEqual(events[4]!.data, { subtype: 'tip', amount: 5, redacted: true }, 'a note; a system event gets no body');
      assert.deepEqual({ ...events[0]!, data: {} }, { ...rs[0]!.event, data: {} });
      await store.redact(conv, [1]); // twice is harmless
      assert.deepEqual((await store.read(conv, { limit: 1 }))[0]!.data, { body: null, redacted: true, mentions: ['x'] });
      assert.deepEqual((await store.lastMessages([conv])).get(conv)!.data, { body: null, redacted: true });
      assert.equal(rs.length, 5);
    });

    test("seqsBySender lists the sender's events that carry text: messages, edits, notes", async () => {
      const conv = randomUUID();
      const [alice, bob] = [randomUUID(), randomUUID()];
      await store.append(conv, [
        draft({ from: alice }),
        draft({ from: bob }),
        draft({ from: alice, kind: 'reaction', data: { target: 1, emoji: 'x', on: true } }),
        draft({ from: alice, cid: 'x' }),
        draft({ from: alice, kind: 'member', data: { op: 'left', users: [alice] } }),
        draft({ from: alice, kind: 'system', data: { subtype: 'tip', note: 'thanks' } }),
        draft({ from: alice, kind: 'system', data: { subtype: 'tip' } }),
      ]);
      await other.append(conv, [draft({ from: alice, kind: 'edit', data: { target: 1, body: 'b' } }), draft({ from: alice })]);
      assert.deepEqual(
        (await store.seqsBySender(conv, alice)).sort((x, y) => x - y),
        [1, 4, 6, 8, 9],
      );
      assert.deepEqual(await store.seqsBySender(conv, bob), [2]);
      assert.deepEqual(await store.seqsBySender(conv, randomUUID()), []);
      assert.deepEqual(await store.seqsBySender(randomUUID(), alice), []);
    });

    test('5.1 two instances appending concurrently to one conversation get exactly 1..N', async () => {
      const conv = randomUUID();
      const rnd = prng(7);
      const perInstance = 200;
      const run = async (s: MessageStore, tag: string) => {
        const results: AppendResult[][] = [];
        for (let sent = 0; sent < perInstance; ) {
          const n = Math.min(perInstance - sent, 1 + Math.floor(rnd() * 12));
          const from = randomUUID();
          results.push(
            await s.append(
              conv,
              Array.from({ length: n }, (_, i) => draft({ from, cid: rnd() < 0.7 ? `${tag}-${sent + i}` : undefined })),
            ),
          );
          sent += n;
        }
        return results;
      };
      const [ra, rb] = await Promise.all([run(store, 'a'), run(other, 'b')]);
      const all = [...ra, ...rb];
      for (const batch of all) {
        assert.ok(batch.every((r) => !r.duplicate));
        const seqs = seqsOf(batch.map((r) => r.event));
        assert.deepEqual(seqs, range(seqs[0]!, seqs[0]! + seqs.length - 1), 'a batch gets consecutive seqs');
      }
      const events = await readAll(other, conv);
      assert.deepEqual(seqsOf(events), range(1, 2 * perInstance));
      const byId = new Map(all.flat().map((r) => [r.event.id, r.event]));
      assert.equal(byId.size, 2 * perInstance);
      for (const e of events) assert.deepEqual(byId.get(e.id), e);
      assert.equal((await store.lastSeqs([conv])).get(conv), 2 * perInstance);
    });

    test('5.4 two instances racing the same cid store it once', async () => {
      const conv = randomUUID();
      const from = randomUUID();
      for (let round = 0; round < 15; round++) {
        const [x, y] = await Promise.all([
          store.append(conv, [draft({ from, cid: `r${round}` })]),
          other.append(conv, [draft({ from, cid: `r${round}` })]),
        ]);
        assert.equal([x[0]!, y[0]!].filter((r) => r.duplicate).length, 1, `round ${round}: one winner`);
        assert.deepEqual(x[0]!.event, y[0]!.event);
      }
      // Crossed batches: each instance holds a cid the other one also sends.
      const [p, q] = await Promise.all([
        store.append(conv, [draft({ from, cid: 'p' }), draft({ from, cid: 'q' })]),
        other.append(conv, [draft({ from, cid: 'q' }), draft({ from, cid: 'p' })]),
      ]);
      assert.deepEqual(p[0]!.event, q[1]!.event);
      assert.deepEqual(p[1]!.event, q[0]!.event);
      assert.equal([...p, ...q].filter((r) => !r.duplicate).length, 2);
      const events = await readAll(store, conv);
      assert.deepEqual(seqsOf(events), range(1, 17));
      assert.equal(new Set(events.map((e) => e.cid)).size, 17);
    });

    test('5.1 appendMany: each conversation of one call gets its own consecutive seqs, with the semantics of append', async () => {
      const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
      const from = randomUUID();
      await store.append(a, [draft(), draft({ from, cid: 'old' })]);
      const [ra, rb, rc] = await appendAll(store, [
        { conv: a, drafts: [draft({ from, cid: 'k' }), draft({ from, cid: 'old' }), draft({ from, cid: 'k' }), draft()] },
        { conv: b, drafts: [draft({ from, cid: 'k' })] },
        { conv: c, drafts: [] },
      ]);
      assert.deepEqual(
        ra!.map((r) => [r.event.seq, r.duplicate]),
        [
          [3, false],
          [2, true],
          [3, true],
          [4, false],
        ],
      );
      assert.deepEqual(
        rb!.map((r) => [r.event.seq, r.duplicate]),
        [[1, false]],
        'the same cid in another conversation is new',
      );
      assert.deepEqual(rc, []);
      assert.deepEqual(ra![2]!.event, ra![0]!.event);
      assert.deepEqual(await readAll(other, a), [...(await readAll(store, a))]);
      assert.deepEqual(seqsOf(await readAll(other, a)), [1, 2, 3, 4]);
      const heads = await other.lastSeqs([a, b, c]);
      assert.deepEqual([heads.get(a), heads.get(b), heads.get(c)], [4, 1, 0]);
    });

    test('5.1 two instances calling appendMany on overlapping conversations concurrently: each conversation is exactly 1..N', async () => {
      const convs = Array.from({ length: 6 }, () => randomUUID());
      const rnd = prng(11);
      const run = async (s: MessageStore) => {
        let n = 0;
        for (let round = 0; round < 30; round++) {
          // A random subset in a random order, so the two instances lock heads in different orders.
          const picked = convs.filter(() => rnd() < 0.6).sort(() => rnd() - 0.5);
          const rs = await appendAll(
            s,
            picked.map((conv) => ({ conv, drafts: [draft(), draft()] })),
          );
          for (const r of rs.flat()) assert.equal(r.duplicate, false);
          n += 2 * picked.length;
        }
        return n;
      };
      const [na, nb] = await Promise.all([run(store), run(other)]);
      let total = 0;
      for (const conv of convs) {
        const seqs = seqsOf(await readAll(store, conv));
        assert.deepEqual(seqs, range(1, seqs.length));
        total += seqs.length;
      }
      assert.equal(total, na + nb);
    });

    for (const seed of [1, 2, 3, 4, 5]) {
      // Seeds 4 and 5 send each instance's operations of a round as one appendMany call.
      const many = seed >= 4;
      test(`5.1/5.4 seeded fuzz ${seed}: random batches, cids and interleavings on two instances keep the invariants${many ? ' (appendMany)' : ''}`, async () => {
        const rnd = prng(seed);
        const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
        const convs = [randomUUID(), randomUUID(), randomUUID()];
        const senders = [randomUUID(), randomUUID(), randomUUID()];
        const kinds: EventKind[] = ['message', 'message', 'message', 'message', 'reaction', 'edit', 'member'];
        let cidN = 0;
        /** Keys whose append finished before the current round: a reuse must be a duplicate. */
        const stored = new Map<string, { from: string; cid: string }[]>(convs.map((c) => [c, []]));
        const log: { conv: string; drafts: EventDraft[]; results: AppendResult[]; expectDup: boolean[] }[] = [];

        for (let round = 0; round < 25; round++) {
          const shared: { from: string; cid: string }[] = []; // new keys sent concurrently this round
          const ops = Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => {
            const conv = pick(convs);
            const drafts: EventDraft[] = [];
            const expectDup: boolean[] = [];
            for (let n = 1 + Math.floor(rnd() * 6); n > 0; n--) {
              const r = rnd();
              const old = stored.get(conv)!;
              if (r < 0.15 && old.length) {
                drafts.push(draft({ ...pick(old) }));
                expectDup.push(true);
              } else if (r < 0.25 && shared.length) {
                drafts.push(draft({ ...pick(shared) }));
                expectDup.push(false); // either may win
              } else if (r < 0.3 && drafts.some((d) => d.cid)) {
                const d = pick(drafts.filter((d) => d.cid));
                drafts.push(draft({ from: d.from, cid: d.cid! }));
                expectDup.push(true); // a copy inside the batch is always the duplicate
              } else if (r < 0.4) {
                drafts.push(draft({ kind: 'system', from: null, data: { n: round } }));
                expectDup.push(false);
              } else {
                const key = { from: pick(senders), cid: `f${seed}-${++cidN}` };
                if (rnd() < 0.3) shared.push(key);
                drafts.push(draft({ ...key, kind: pick(kinds) }));
                expectDup.push(false);
              }
            }
            return { conv, drafts, expectDup, via: rnd() < 0.5 ? store : other };
          });
          let done: AppendResult[][];
          if (many) {
            done = new Array(ops.length);
            await Promise.all(
              [...new Set([store, other])].map(async (via) => {
                const mine = ops.map((op, i) => ({ op, i })).filter((x) => x.op.via === via);
                const rs = await appendAll(
                  via,
                  mine.map(({ op }) => ({ conv: op.conv, drafts: op.drafts })),
                );
                mine.forEach(({ i }, k) => (done[i] = rs[k]!));
              }),
            );
          } else done = await Promise.all(ops.map((op) => op.via.append(op.conv, op.drafts)));
          ops.forEach((op, i) => {
            log.push({ conv: op.conv, drafts: op.drafts, results: done[i]!, expectDup: op.expectDup });
            for (const d of op.drafts) if (d.cid && d.from) stored.get(op.conv)!.push({ from: d.from, cid: d.cid });
          });
        }

        for (const conv of convs) {
          const events = await readAll(other, conv);
          const entries = log.filter((l) => l.conv === conv);
          const N = entries.flatMap((l) => l.results).filter((r) => !r.duplicate).length;
          assert.deepEqual(seqsOf(events), range(1, N), 'exactly seqs 1..N');
          assert.equal((await store.lastSeqs([conv])).get(conv), N);
          const bySeq = new Map(events.map((e) => [e.seq, e]));
          const byKey = new Map<string, StoredEvent>();
          for (const e of events) {
            if (e.cid == null || e.from == null) continue;
            const k = `${e.from}/${e.cid}`;
            assert.equal(byKey.has(k), false, `key ${k} stored twice`);
            byKey.set(k, e);
          }
          for (const { drafts, results, expectDup } of entries) {
            const fresh = results.filter((r) => !r.duplicate).map((r) => r.event.seq);
            assert.deepEqual(fresh, range(fresh[0] ?? 1, (fresh[0] ?? 1) + fresh.length - 1), 'new events of a batch are consecutive');
            drafts.forEach((d, i) => {
              const r = results[i]!;
              assert.deepEqual(bySeq.get(r.event.seq), r.event, 'the result is what is stored');
              if (expectDup[i]) assert.equal(r.duplicate, true);
              if (!r.duplicate) assert.equal(r.event.id, d.id);
              if (d.cid && d.from) assert.deepEqual(byKey.get(`${d.from}/${d.cid}`), r.event);
              else assert.equal(r.duplicate, false);
            });
          }
          const lastMessage = events.findLast((e) => e.kind === 'message');
          assert.deepEqual((await store.lastMessages([conv])).get(conv), lastMessage);
          for (const s of senders) {
            const want = events.filter((e) => carriesText(e) && e.from === s).map((e) => e.seq);
            assert.deepEqual(
              (await other.seqsBySender(conv, s)).sort((x, y) => x - y),
              want,
            );
          }
        }
      });
    }
  });
}
