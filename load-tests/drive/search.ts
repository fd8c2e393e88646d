/**
 * What message search costs, on durable PostgreSQL, in the bench process (no HTTP): 1,000,000 messages over 10,000
 * conversations seeded with SQL and indexed by the indexer's own sweep; a user in 100 of them runs a fixed query mix
 * (a rare word, a word in 5% of messages, a two-word phrase, `from:` with that common word) through SearchService,
 * p50/p99 per kind; the index's size per message. Then the send path (the hub's EventWriter on the message store)
 * with the indexer off and on in alternating phases: appends/s, append p99, PostgreSQL CPU per append (the indexer's
 * catch-up after each phase counted in its phase).
 */
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { openDatabase } from '../../server/src/db/database.ts';
import { EventWriter } from '../../server/src/hub/event-writer.ts';
import { PostgresMessageSearch } from '../../server/src/search/message-search.postgres.ts';
import { PostgresSearchIndexer } from '../../server/src/search/search-indexer.postgres.ts';
import { SearchService } from '../../server/src/search/search-service.ts';
import { PostgresMessageStore } from '../../server/src/store/message-store.postgres.ts';
import { createDatabase } from '../../test/helpers/postgres.ts';
import { cpuDelta, round, sample } from '../harness/procs.ts';
import type { Ctx } from '../harness/context.ts';

const pct = (xs: number[], q: number) => round([...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!, 2);

export async function search(ctx: Ctx) {
  const size = ctx.quick
    ? { messages: 100_000, convs: 1000, queries: 30, writers: 100, phaseS: 3 }
    : { messages: 1_000_000, convs: 10_000, queries: 300, writers: 400, phaseS: 10 };
  const started = Date.now();
  const url = await createDatabase(ctx.pg.url);
  await ctx.migrate(url);
  const database = await openDatabase({ databaseUrl: url, dataDir: ctx.work, poolMax: 20 });
  ctx.cleanup(() => database.close());
  const q = database.query.bind(database);
  const perConv = size.messages / size.convs;
  ctx.log(`search: seeding ${size.messages} messages over ${size.convs} conversations …`);
  // Bodies of 10 words from a 5,000-word vocabulary; `common` in 5% of messages (every message of the searcher's
  // conversations: the worst case), `zyzzyva` in 20, `red apple` as a phrase in about 1% (and `red`, `apple` apart in
  // more). The searcher's conversations have ten senders, bench0, bench100, … bench900.
  await q(
    `insert into users (id, email, username) select md5('u' || i)::uuid, 'b' || i || '@example.com', 'bench' || i from generate_series(0, 999) i`,
    [],
  );
  await q(
    `insert into conversations (id, kind, title) select md5('c' || i)::uuid, 'group', 'room ' || i from generate_series(0, $1::int - 1) i`,
    [size.convs],
  );
  await q(
    `insert into members (conversation_id, user_id) select md5('c' || (i * ($1::int / 100)))::uuid, md5('u0')::uuid from generate_series(0, 99) i`,
    [size.convs],
  );
  await q(
    `insert into log_events (conversation_id, seq, id, kind, sender_id, ts, data)
     select md5('c' || (n % $2::int))::uuid, n / $2::int + 1, md5('e' || n)::uuid, 'message', md5('u' || ((n::bigint * 7919) % 1000))::uuid,
       timestamptz '2026-01-01' + n * interval '1 second',
       jsonb_build_object('body', concat_ws(' ',
         (select string_agg('w' || ((n::bigint * 2654435761 + k * 40503) % 5000), ' ') from generate_series(1, 10) k),
         case when n % 20 = 0 then 'common' end,
         case when n % 50000 = $2::int / 100 then 'zyzzyva' end,
         case when n % 97 = 0 then 'red apple' when n % 11 = 0 then 'red' when n % 13 = 0 then 'apple' end))
     from generate_series(0, $1::int - 1) n`,
    [size.messages, size.convs],
  );
  await q(`insert into log_heads (conversation_id, last_seq) select md5('c' || i)::uuid, $2::int from generate_series(0, $1::int - 1) i`, [
    size.convs,
    perConv,
  ]);
  const logger = pino({ level: 'warn' }, pino.destination(2));
  const indexer = new PostgresSearchIndexer({ db: database.db, logger, language: 'simple', sweepMs: 0 });
  const t0 = performance.now();
  const before = sample(ctx.backing);
  await indexer.start();
  await indexer.sweep();
  const indexS = (performance.now() - t0) / 1000;
  const indexCpu = cpuDelta(before, sample(ctx.backing)).postgres ?? 0;
  await q('vacuum analyze search_messages', []);
  const [sizes] = await q<{ total: string; gin: string; rows: string }>(
    `select pg_total_relation_size('search_messages') total, pg_relation_size('search_messages_tsv_idx') gin, (select count(*) from search_messages) rows`,
    [],
  );
  ctx.log(`search: indexed ${sizes!.rows} messages in ${round(indexS, 1)} s; querying …`);

  const service = new SearchService({ db: database.db, search: new PostgresMessageSearch({ db: database.db, language: 'simple' }) });
  const me = (await q<{ id: string }>(`select md5('u0')::uuid id`, []))[0]!.id;
  const kinds = { rare: 'zyzzyva', common: 'common', phrase: '"red apple"', fromCommon: 'from:bench100 common' };
  const latency: Record<string, number> = {};
  const hits: Record<string, number> = {};
  for (const [kind, query] of Object.entries(kinds)) {
    const ms: number[] = [];
    for (let i = 0; i < size.queries; i++) {
      const t = performance.now();
      const r = await service.search(me, { query, order: 'relevance', limit: 20 });
      ms.push(performance.now() - t);
      hits[kind] = r.hits.length;
    }
    latency[`${kind}P50`] = pct(ms, 0.5);
    latency[`${kind}P99`] = pct(ms, 0.99);
  }

  // The send path, indexer off and on by turns, on conversations the seed made.
  const store = new PostgresMessageStore(database);
  const send: Record<string, { appends: number; s: number; pgCpuS: number; lat: number[] }> = {
    off: { appends: 0, s: 0, pgCpuS: 0, lat: [] },
    on: { appends: 0, s: 0, pgCpuS: 0, lat: [] },
  };
  const live = new PostgresSearchIndexer({ db: database.db, logger, language: 'simple', sweepMs: 0 });
  for (const mode of ['off', 'on', 'off', 'on'] as const) {
    const writer = new EventWriter(store, (e) => mode === 'on' && live.appended(e));
    const s0 = sample(ctx.backing);
    const t = performance.now();
    const until = t + size.phaseS * 1000;
    const m = send[mode]!;
    await Promise.all(
      Array.from({ length: size.writers }, async (_, w) => {
        const conv = (await q<{ id: string }>(`select md5('c' || $1::int)::uuid id`, [(w * 7) % size.convs]))[0]!.id;
        while (performance.now() < until) {
          const a = performance.now();
          await writer.write(conv, {
            id: randomUUID(),
            kind: 'message',
            from: me,
            ts: Date.now(),
            data: { body: `w${w} common send path ${m.appends}` },
          });
          m.lat.push(performance.now() - a);
          m.appends++;
        }
      }),
    );
    m.s += (performance.now() - t) / 1000;
    await live.flush();
    m.pgCpuS += cpuDelta(s0, sample(ctx.backing)).postgres ?? 0;
  }
  await Promise.all([indexer.close(), live.close()]);
  const per = (mode: 'off' | 'on') => ({
    perS: round(send[mode]!.appends / send[mode]!.s, 0),
    cpuUs: round((send[mode]!.pgCpuS * 1e6) / send[mode]!.appends, 1),
    p99: pct(send[mode]!.lat, 0.99),
  });
  const [off, on] = [per('off'), per('on')];
  ctx.record({
    name: 'search',
    server: 'Hubbub search (PostgreSQL)',
    kind: 'hubbub',
    durationS: round((Date.now() - started) / 1000, 1),
    figures: {
      ...latency,
      indexBytesPerMessage: round(Number(sizes!.total) / Number(sizes!.rows), 0),
      ginBytesPerMessage: round(Number(sizes!.gin) / Number(sizes!.rows), 0),
      indexedPerS: round(Number(sizes!.rows) / indexS, 0),
      indexPgCpuUsPerMessage: round((indexCpu * 1e6) / Number(sizes!.rows), 1),
      appendsPerSOff: off.perS,
      appendsPerSOn: on.perS,
      throughputOnVsOff: round(on.perS / off.perS, 3),
      pgCpuUsPerAppendOff: off.cpuUs,
      pgCpuUsPerAppendOn: on.cpuUs,
      cpuOnVsOff: round(on.cpuUs / off.cpuUs, 3),
      appendP99Off: off.p99,
      appendP99On: on.p99,
    },
    counters: { messages: Number(sizes!.rows), ...Object.fromEntries(Object.entries(hits).map(([k, v]) => [`hits_${k}`, v])) },
  });
}
