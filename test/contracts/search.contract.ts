/**
 * The message search contract: one set of test bodies that every store with search passes, spec
 * ids in the test names. search.test.ts runs it on PGlite and PostgreSQL; MESSAGE_STORE=cassandra
 * declares search unsupported (test/integration/search.test.ts checks the error).
 *
 * The bodies work at the port: events appended to the message store, the indexer told as the hub
 * tells it, memberships and accounts written as the services write them, queries through
 * SearchService (so `from:` and `in:` names resolve as they do for the API).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe } from 'node:test';
import { and, eq } from 'drizzle-orm';
import { conversations, members, users } from '../../db/schema/index.ts';
import type { Db } from '../../server/src/db/database.ts';
import type { MessageSearch, SearchHit, SearchIndexer } from '../../server/src/search/message-search.ts';
import { SearchService } from '../../server/src/search/search-service.ts';
import type { MessageStore } from '../../server/src/store/message-store.ts';
import { fixtureTest } from './fixture-test.ts';

/** An indexer with the sweep that heals what a dead replica left. */
export type SweepingIndexer = SearchIndexer & { sweep(): Promise<void> };

export interface SearchFixture {
  db: Db;
  store: MessageStore;
  search: MessageSearch;
  indexer: SweepingIndexer;
  /** Another replica's indexer on the same database (`delayMs`: how long it buffers). */
  secondIndexer(opts?: { delayMs?: number }): Promise<SearchIndexer>;
  cleanup(): Promise<void>;
}

/** Each store's hit sets for the shared corpus, by query: the last test compares them across stores. */
export const corpusHits = new Map<string, Map<string, string[]>>();

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 2, 1, 12);

/** Users, conversations and messages written the way the services and the hub write them. */
class World {
  readonly service: SearchService;
  constructor(
    readonly f: SearchFixture,
    depth?: Map<string, number>,
  ) {
    this.service = new SearchService({
      db: f.db,
      search: f.search,
      historyDepthOf: async (u) => depth?.get(u) ?? Number.MAX_SAFE_INTEGER,
    });
  }

  async user(name: string) {
    const id = randomUUID();
    const username = `${name}_${id.slice(0, 8)}`;
    await this.f.db.insert(users).values({ id, email: `${username}@example.com`, username });
    return { id, username };
  }

  async group(title: string, memberIds: string[]) {
    const id = randomUUID();
    await this.f.db.insert(conversations).values({ id, kind: 'group', title });
    await this.f.db.insert(members).values(memberIds.map((u) => ({ conversationId: id, userId: u })));
    return id;
  }

  async send(conv: string, from: string, body: string, opts: { mentions?: string[]; ts?: number; via?: SearchIndexer } = {}) {
    const data: Record<string, unknown> = { body };
    if (opts.mentions) data.mentions = opts.mentions;
    const [r] = await this.f.store.append(conv, [{ id: randomUUID(), kind: 'message', from, ts: opts.ts ?? T0, data }]);
    (opts.via ?? this.f.indexer).appended(r!.event);
    return r!.event.seq;
  }

  async edit(conv: string, from: string, seq: number, body: string, mentions?: string[], via?: SearchIndexer) {
    const data: Record<string, unknown> = { target: seq, body };
    if (mentions) data.mentions = mentions;
    const [r] = await this.f.store.append(conv, [{ id: randomUUID(), kind: 'edit', from, ts: T0, data }]);
    (via ?? this.f.indexer).appended(r!.event);
  }

  async delete(conv: string, from: string, seq: number, via?: SearchIndexer) {
    const [r] = await this.f.store.append(conv, [{ id: randomUUID(), kind: 'delete', from, ts: T0, data: { target: seq } }]);
    await this.f.store.redact(conv, [seq]);
    (via ?? this.f.indexer).appended(r!.event);
  }

  /** As AccountService.delete does it: bodies redacted, memberships gone, user marked, index erased. */
  async erase(userId: string, convs: string[]) {
    for (const c of convs) await this.f.store.redact(c, await this.f.store.seqsBySender(c, userId));
    await this.f.db.delete(members).where(eq(members.userId, userId));
    await this.f.db.update(users).set({ deletedAt: new Date() }).where(eq(users.id, userId));
    await this.f.search.eraseSender(userId);
  }

  async remove(conv: string, userId: string) {
    await this.f.db.delete(members).where(and(eq(members.conversationId, conv), eq(members.userId, userId)));
  }

  async find(userId: string, query: string, opts: { order?: 'relevance' | 'recent'; limit?: number; conversationId?: string } = {}) {
    const all: SearchHit[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 100; pages++) {
      const page = await this.service.search(userId, {
        query,
        order: opts.order ?? 'relevance',
        limit: opts.limit ?? 50,
        cursor,
        conversationId: opts.conversationId,
      });
      all.push(...page.hits);
      if (!page.nextCursor) return all;
      cursor = page.nextCursor;
    }
    throw new Error('more than 100 pages');
  }

  /** Hits as sorted "conv:seq" keys. */
  async keys(userId: string, query: string, opts: { order?: 'relevance' | 'recent'; limit?: number } = {}) {
    return (await this.find(userId, query, opts)).map((h) => `${h.conversationId}:${h.seq}`).sort();
  }
}

const key = (conv: string, seq: number) => `${conv}:${seq}`;

export function registerSearchContract(name: string, make: () => Promise<SearchFixture>) {
  const ftest = fixtureTest(make);
  describe(`message search contract: ${name}`, () => {
    ftest('11 words, phrases, from:, in:, dates and has:mention find exactly the matching messages the caller can read', async (f) => {
      const w = new World(f);
      const [ann, bob, eve] = [await w.user('ann'), await w.user('bob'), await w.user('eve')];
      const design = await w.group('Design team', [ann.id, bob.id]);
      const ops = await w.group('Ops', [ann.id, bob.id]);
      const secret = await w.group('Secret', [eve.id]);
      // [conv, sender, body, day offset, mentions]
      const corpus: [string, string, string, number, string[]?][] = [
        [design, ann.id, 'the blue whale deploy is done', 0],
        [design, bob.id, 'whale sighting near the harbour', 1],
        [design, bob.id, 'deploy blue green tomorrow', 2, [ann.id]],
        [ops, ann.id, 'pager says the database is down', 3],
        [ops, bob.id, 'the whale is blue, the sky is blue', 4],
        [ops, bob.id, 'green deploy of the whale service <b>now</b>', 5, [bob.id]],
        [secret, eve.id, 'blue whale secret plan', 6, [ann.id]],
      ];
      const seqs: string[] = [];
      for (const [c, u, body, d, m] of corpus) seqs.push(key(c, await w.send(c, u, body, { ts: T0 + d * DAY, mentions: m })));
      await f.indexer.flush();
      // The expected set of each query, from the corpus (what ann may read: design and ops).
      const readable = corpus.map((r, i) => ({ r, k: seqs[i]! })).filter(({ r }) => r[0] !== secret);
      const expect = (pred: (r: (typeof corpus)[number]) => boolean) =>
        readable
          .filter(({ r }) => pred(r))
          .map(({ k }) => k)
          .sort();
      const words = (s: string) => s.toLowerCase().split(/[^a-z]+/);
      const date = (d: number) => new Date(T0 + d * DAY).toISOString().slice(0, 10);
      const queries: [string, (r: (typeof corpus)[number]) => boolean][] = [
        ['whale', (r) => words(r[2]).includes('whale')],
        ['WHALE Blue', (r) => words(r[2]).includes('whale') && words(r[2]).includes('blue')],
        ['"blue whale"', (r) => r[2].includes('blue whale')],
        ['"whale blue"', () => false],
        ['deploy -green', (r) => words(r[2]).includes('deploy') && !words(r[2]).includes('green')],
        ['whale or pager', (r) => words(r[2]).includes('whale') || words(r[2]).includes('pager')],
        [`from:${bob.username} whale`, (r) => r[1] === bob.id && words(r[2]).includes('whale')],
        [`from:@${ann.username.toUpperCase()}`, (r) => r[1] === ann.id],
        ['from:me deploy', (r) => r[1] === ann.id && words(r[2]).includes('deploy')],
        [`in:"design team" deploy`, (r) => r[0] === design && words(r[2]).includes('deploy')],
        [`in:${ops}`, (r) => r[0] === ops],
        [`in:${secret} whale`, () => false],
        [`blue before:${date(2)}`, (r) => words(r[2]).includes('blue') && r[3] < 2],
        [`blue after:${date(2)}`, (r) => words(r[2]).includes('blue') && r[3] >= 2],
        [`after:${date(1)} before:${date(4)}`, (r) => r[3] >= 1 && r[3] < 4],
        ['has:mention', (r) => !!r[4]?.includes(ann.id)],
        ['has:mention deploy', (r) => !!r[4]?.includes(ann.id) && words(r[2]).includes('deploy')],
        ['from:nobody_at_all whale', () => false],
      ];
      const found = new Map<string, string[]>();
      for (const [q, pred] of queries) {
        const got = await w.keys(ann.id, q);
        assert.deepEqual(got, expect(pred), q);
        // Both orders give the same set, paged one hit at a time.
        assert.deepEqual(await w.keys(ann.id, q, { order: 'recent', limit: 1 }), got, `${q} (recent, paged)`);
        found.set(
          q.replaceAll(bob.username, 'BOB').replaceAll(ann.username.toUpperCase(), 'ANN').replace(ops, 'OPS').replace(secret, 'SECRET'),
          got
            .map((k) => seqs.indexOf(k))
            .sort((x, y) => x - y)
            .map(String),
        );
      }
      corpusHits.set(name, found);
      // Eve sees her own conversation and nothing of the others.
      assert.deepEqual(await w.keys(eve.id, 'whale'), [seqs[6]]);
    });

    ftest('11 hits carry conversation, seq, id, sender, time and an escaped snippet with the matches marked', async (f) => {
      const w = new World(f);
      const ann = await w.user('ann');
      const c = await w.group('Snippets', [ann.id]);
      const body = 'before <script>alert(1)</script> & the needle "here" <mark>fake</mark> after';
      const seq = await w.send(c, ann.id, body, { ts: T0 });
      await f.indexer.flush();
      const [hit, ...rest] = await w.find(ann.id, 'needle');
      assert.equal(rest.length, 0);
      assert.equal(hit!.conversationId, c);
      assert.equal(hit!.seq, seq);
      assert.equal(hit!.from, ann.id);
      assert.equal(hit!.ts, T0);
      assert.match(hit!.id, /^[0-9a-f-]{36}$/);
      assert.equal(
        hit!.snippet,
        'before &lt;script&gt;alert(1)&lt;/script&gt; &amp; the <mark>needle</mark> &quot;here&quot; &lt;mark&gt;fake&lt;/mark&gt; after',
      );
      // Text that looks like markup is text: searchable, and kept in the snippet.
      assert.deepEqual(await w.keys(ann.id, 'script'), [key(c, seq)]);
      assert.match((await w.find(ann.id, '"mark fake"'))[0]!.snippet, /&lt;<mark>mark<\/mark>&gt;<mark>fake<\/mark>&lt;\/mark&gt;/);
      // Text that looks like markup is text: searchable, and kept in the snippet.
      assert.deepEqual(await w.keys(ann.id, 'script'), [key(c, seq)]);
      assert.match((await w.find(ann.id, '"mark fake"'))[0]!.snippet, /&lt;<mark>mark<\/mark>&gt;<mark>fake<\/mark>&lt;\/mark&gt;/);
      // Operators only: the start of the text, escaped, nothing marked.
      const [plain] = await w.find(ann.id, `in:${c}`);
      assert.ok(plain!.snippet.startsWith('before &lt;script&gt;') && !plain!.snippet.includes('<mark>'));
    });

    ftest('11 an edit replaces the indexed text; a delete removes it; the same within one indexing batch', async (f) => {
      const w = new World(f);
      const ann = await w.user('ann');
      const c = await w.group('Edits', [ann.id]);
      const a = await w.send(c, ann.id, 'original alpha text');
      const b = await w.send(c, ann.id, 'doomed bravo text');
      await f.indexer.flush();
      assert.deepEqual(await w.keys(ann.id, 'alpha'), [key(c, a)]);
      await w.edit(c, ann.id, a, 'rewritten charlie text');
      await w.delete(c, ann.id, b);
      await f.indexer.flush();
      assert.deepEqual(await w.keys(ann.id, 'alpha'), [], 'the old text of an edited message is never found');
      assert.deepEqual(await w.keys(ann.id, 'charlie'), [key(c, a)]);
      assert.deepEqual(await w.keys(ann.id, 'bravo'), [], 'a deleted message is never found');
      // Message, edits and delete all in one batch: only the newest text, nothing of the deleted.
      const d = await w.send(c, ann.id, 'first delta');
      await w.edit(c, ann.id, d, 'second echo');
      await w.edit(c, ann.id, d, 'third foxtrot', [ann.id]);
      const e = await w.send(c, ann.id, 'short lived golf');
      await w.edit(c, ann.id, e, 'short lived hotel');
      await w.delete(c, ann.id, e);
      await f.indexer.flush();
      for (const gone of ['delta', 'echo', 'golf', 'hotel']) assert.deepEqual(await w.keys(ann.id, gone), [], gone);
      assert.deepEqual(await w.keys(ann.id, 'foxtrot has:mention'), [key(c, d)], 'the edit brought its mentions');
      await w.edit(c, ann.id, d, 'fourth foxtrot');
      await f.indexer.flush();
      assert.deepEqual(await w.keys(ann.id, 'foxtrot has:mention'), [], 'an edit without mentions drops them');
    });

    ftest('11 a non-member and a removed member never find a conversation; membership counts at once', async (f) => {
      const w = new World(f);
      const [ann, bob, out] = [await w.user('ann'), await w.user('bob'), await w.user('out')];
      const c = await w.group('Members', [ann.id, bob.id]);
      const seq = await w.send(c, ann.id, 'members only kilo');
      await f.indexer.flush();
      assert.deepEqual(await w.keys(bob.id, 'kilo'), [key(c, seq)]);
      assert.deepEqual(await w.keys(out.id, 'kilo'), [], 'a non-member');
      assert.deepEqual(await w.keys(out.id, 'kilo', {}), []);
      assert.deepEqual((await w.find(out.id, 'kilo', { conversationId: c })).length, 0, 'naming the conversation does not help');
      await w.remove(c, bob.id);
      assert.deepEqual(await w.keys(bob.id, 'kilo'), [], 'removed: the next search no longer finds it');
      await f.db.insert(members).values({ conversationId: c, userId: bob.id });
      assert.deepEqual(await w.keys(bob.id, 'kilo'), [key(c, seq)], 'added back: found again (the hub lets a joiner read history)');
    });

    ftest('11 nothing of an erased account is found, also where it had left, also what was not indexed yet', async (f) => {
      const w = new World(f);
      const [ann, gone] = [await w.user('ann'), await w.user('gone')];
      const c = await w.group('Erasure', [ann.id, gone.id]);
      const left = await w.group('Left', [ann.id, gone.id]);
      await w.send(c, gone.id, 'lima indexed before erasure');
      await w.send(left, gone.id, 'lima in a group they left');
      const mine = await w.send(c, ann.id, 'lima from ann stays');
      await f.indexer.flush();
      await w.remove(left, gone.id);
      const late = await w.send(c, gone.id, 'lima sent just before erasure');
      // Erased before the indexer saw the last message.
      await w.erase(gone.id, [c]);
      await f.indexer.flush();
      assert.deepEqual(await w.keys(ann.id, 'lima'), [key(c, mine)]);
      assert.ok(late > mine);
    });

    ftest('11 only the newest historyDepth events of a conversation can be found', async (f) => {
      const ann = { id: '' };
      const depth = new Map<string, number>();
      const w = new World(f, depth);
      ann.id = (await w.user('ann')).id;
      depth.set(ann.id, 3);
      const c = await w.group('Depth', [ann.id]);
      const seqs = [];
      for (let i = 0; i < 5; i++) seqs.push(await w.send(c, ann.id, `mike number ${i}`));
      await f.indexer.flush();
      assert.deepEqual(
        await w.keys(ann.id, 'mike'),
        seqs
          .slice(2)
          .map((s) => key(c, s))
          .sort(),
      );
    });

    ftest('11 pages in relevance and recent order: each hit once, in order, until nextCursor is null', async (f) => {
      const w = new World(f);
      const ann = await w.user('ann');
      const convs = [await w.group('P1', [ann.id]), await w.group('P2', [ann.id])];
      for (let i = 0; i < 23; i++) {
        // Ranks differ (november repeated 1-3 times) and tie, times differ and tie.
        await w.send(convs[i % 2]!, ann.id, `${'november '.repeat(1 + (i % 3))}oscar ${i}`, { ts: T0 + (i % 5) * 1000 });
      }
      await f.indexer.flush();
      for (const order of ['relevance', 'recent'] as const) {
        const hits = await w.find(ann.id, 'november', { order, limit: 4 });
        assert.equal(hits.length, 23, order);
        assert.equal(new Set(hits.map((h) => `${h.conversationId}:${h.seq}`)).size, 23, `${order}: no hit twice`);
        if (order === 'recent') for (let i = 1; i < hits.length; i++) assert.ok(hits[i - 1]!.ts >= hits[i]!.ts, 'newest first');
        else {
          const reps = hits.map((h) => (h.snippet.match(/<mark>/g) ?? []).length);
          for (let i = 1; i < reps.length; i++) assert.ok(reps[i - 1]! >= reps[i]!, `more matches rank first: ${reps.join(',')}`);
        }
      }
    });

    ftest('11 two indexers (two replicas) appending to one conversation in turns index each message once, with its newest text', async (f) => {
      const w = new World(f);
      const ann = await w.user('ann');
      const c = await w.group('Replicas', [ann.id]);
      const other = await f.secondIndexer();
      try {
        const pick = (i: number) => (i % 2 ? other : f.indexer);
        for (let i = 0; i < 30; i++) {
          const seq = await w.send(c, ann.id, `papa ${i}`, { via: pick(i) });
          // Edited through the other replica than the one that appended the message.
          if (i % 3 === 2) await w.edit(c, ann.id, seq - 1, `quebec ${i}`, undefined, pick(i));
        }
        // The edits' replica writes first: the message's own row, written after, must not undo them.
        await other.flush();
        await f.indexer.flush();
        const papa = await w.find(ann.id, 'papa', { limit: 50 });
        const quebec = await w.find(ann.id, 'quebec', { limit: 50 });
        assert.equal(papa.length + quebec.length, 30);
        assert.equal(quebec.length, 10);
        assert.equal(new Set([...papa, ...quebec].map((h) => h.seq)).size, 30, 'each message once');
      } finally {
        await other.close();
      }
    });

    ftest('11 a delete written by one replica before the other indexes the message: never found', async (f) => {
      const w = new World(f);
      const ann = await w.user('ann');
      const c = await w.group('Late', [ann.id]);
      const other = await f.secondIndexer();
      try {
        const seq = await w.send(c, ann.id, 'romeo doomed', { via: other });
        const kept = await w.send(c, ann.id, 'romeo kept', { via: other });
        await w.delete(c, ann.id, seq);
        await f.indexer.flush();
        await other.flush();
        assert.deepEqual(await w.keys(ann.id, 'romeo'), [key(c, kept)]);
        assert.deepEqual(await w.keys(ann.id, `in:${c}`), [key(c, kept)], 'not found by operators either');
      } finally {
        await other.close();
      }
    });

    ftest('11 what a replica appended and died before indexing is indexed by the sweep of another', async (f) => {
      const w = new World(f);
      const ann = await w.user('ann');
      const c = await w.group('Dead', [ann.id]);
      // It buffers for a minute: it dies (is never heard of again) before writing.
      const dead = await f.secondIndexer({ delayMs: 60_000 });
      const a = await w.send(c, ann.id, 'sierra first');
      await f.indexer.flush();
      const b = await w.send(c, ann.id, 'sierra lost', { via: dead });
      await w.edit(c, ann.id, a, 'sierra tango', undefined, dead);
      const d = await w.send(c, ann.id, 'sierra after');
      await f.indexer.flush();
      assert.deepEqual(await w.keys(ann.id, 'sierra'), [key(c, a), key(c, d)].sort(), 'not found before the sweep');
      await f.indexer.sweep();
      assert.deepEqual(await w.keys(ann.id, 'sierra'), [key(c, a), key(c, b), key(c, d)].sort());
      assert.deepEqual(await w.keys(ann.id, 'tango'), [key(c, a)], 'the dead replica’s edit too');
      assert.deepEqual(await w.keys(ann.id, 'first'), [], 'and the old text is gone');
    });

    ftest('11 a replica that stops writes what it buffered', async (f) => {
      const w = new World(f);
      const ann = await w.user('ann');
      const c = await w.group('Stopping', [ann.id]);
      const stopping = await f.secondIndexer({ delayMs: 60_000 });
      const seq = await w.send(c, ann.id, 'uniform at shutdown', { via: stopping });
      await stopping.close();
      assert.deepEqual(await w.keys(ann.id, 'uniform'), [key(c, seq)]);
    });

    ftest('11 bad queries are refused as BAD_REQUEST', async (f) => {
      const w = new World(f);
      const ann = await w.user('ann');
      for (const q of ['', '   ', 'before:yesterday', 'after:2026-02-30', 'has:link', 'from:', 'in:""', `${'from:x '.repeat(11)}`]) {
        await assert.rejects(w.find(ann.id, q), (e: Error & { code?: string }) => e.code === 'BAD_REQUEST', JSON.stringify(q));
      }
      await assert.rejects(
        w.service.search(ann.id, { query: 'x', order: 'recent', limit: 5, cursor: 'not-a-cursor' }),
        (e: Error & { code?: string }) => e.code === 'BAD_REQUEST',
      );
      // Text that makes no lexemes, or tsquery syntax, is just text: no error, no hits.
      for (const q of ['!!! ???', "'a' & | ! <-> :*", '"unclosed phrase', '-', 'or or']) assert.deepEqual(await w.keys(ann.id, q), [], q);
    });
  });
}
