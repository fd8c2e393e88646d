import { sql } from 'drizzle-orm';
import type { IndexBatch } from './index-buffer.ts';
import { PLAIN_TEXT_SQL } from './message-search.ts';

const tsv = (language: string, column: string) => sql`to_tsvector(${language}::regconfig, ${sql.raw(PLAIN_TEXT_SQL(column))})`;

/** A delete wins over everything: the row keeps its key and loses its text. */
const TOMBSTONE = sql.raw(`on conflict (conversation_id, seq) do update
    set body = null, tsv = null, mentions = null, version = greatest(search_messages.version, excluded.version)`);

/** A PostgreSQL array literal (sent as text, cast in SQL: no driver's array handling involved). */
export function pgArray(xs: readonly (string | number | null)[]): string {
  const item = (x: string | number | null) =>
    x === null ? 'NULL' : typeof x === 'number' ? String(x) : `"${x.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  return `{${xs.map(item).join(',')}}`;
}

const column = <T>(xs: readonly T[], f: (x: T) => string | number | null) => pgArray(xs.map(f));
const mentionsLiteral = (m: string[] | null) => (m ? pgArray(m) : null);

/**
 * One batch of the after-append hook's events (IndexBuffer), applied as one statement: message
 * rows inserted (never over a row an edit or a delete wrote first, from another replica), edits of
 * messages this batch does not hold upserted if newer than the row (the message's id and time
 * read by key from the log, for a message another replica has not indexed yet), deletes written
 * as tombstones, and each conversation's cursor moved over the gapless run the batch applied.
 * The buffer makes the three sets of keys disjoint (one statement may not change a row twice).
 * Erased accounts' messages are left out. Columns travel as array literals and are unnested:
 * PostgreSQL parses them at about two thirds of the CPU of the same rows as JSON. Lookups are
 * laterals with a LIMIT, so every plan probes the users, log_events and search_heads keys
 * instead of scanning the tables.
 */
export function applyBatchSql(b: IndexBatch, language: string) {
  const { rows, edits, deletes, runs } = b;
  return sql`
  with r as (
    select * from unnest(
      ${column(rows, (x) => x.conv)}::text::uuid[], ${column(rows, (x) => x.seq)}::text::bigint[],
      ${column(rows, (x) => x.id)}::text::uuid[], ${column(rows, (x) => x.sender)}::text::uuid[],
      ${column(rows, (x) => x.ts)}::text::timestamptz[], ${column(rows, (x) => x.body)}::text::text[],
      ${column(rows, (x) => mentionsLiteral(x.mentions))}::text::text[], ${column(rows, (x) => x.version)}::text::bigint[]
    ) as t(conv, seq, id, sender, ts, body, mentions, version)
  ),
  ed as (
    select * from unnest(
      ${column(edits, (x) => x.conv)}::text::uuid[], ${column(edits, (x) => x.target)}::text::bigint[],
      ${column(edits, (x) => x.body)}::text::text[], ${column(edits, (x) => mentionsLiteral(x.mentions))}::text::text[],
      ${column(edits, (x) => x.version)}::text::bigint[]
    ) as t(conv, target, body, mentions, version)
  ),
  dl as (
    select * from unnest(
      ${column(deletes, (x) => x.conv)}::text::uuid[], ${column(deletes, (x) => x.target)}::text::bigint[],
      ${column(deletes, (x) => x.version)}::text::bigint[]
    ) as t(conv, target, version)
  ),
  ru as (
    select * from unnest(
      ${column(runs, (x) => x.conv)}::text::uuid[], ${column(runs, (x) => x.first)}::text::bigint[],
      ${column(runs, (x) => x.last)}::text::bigint[]
    ) as t(conv, first, last)
  ),
  gone as (
    select s.sender from (select distinct sender from r where sender is not null) s
    cross join lateral (select 1 from users u where u.id = s.sender and u.deleted_at is not null limit 1) u
  ),
  ins as (
    insert into search_messages (conversation_id, seq, id, sender_id, ts, body, mentions, tsv, version)
    select conv, seq, id, sender, ts, body, mentions::uuid[], ${tsv(language, 'body')}, version from r
    where not exists (select 1 from gone where gone.sender = r.sender)
    on conflict (conversation_id, seq) do nothing
  ),
  edw as (
    insert into search_messages (conversation_id, seq, id, sender_id, ts, body, mentions, tsv, version)
    select l.conversation_id, l.seq, l.id, l.sender_id, l.ts, ed.body, ed.mentions::uuid[], ${tsv(language, 'ed.body')}, ed.version
    from ed
    cross join lateral (
      select * from log_events l where l.conversation_id = ed.conv and l.seq = ed.target
        and l.kind = 'message' and jsonb_typeof(l.data->'body') = 'string' limit 1) l
    left join lateral (select true as erased from users u where u.id = l.sender_id and u.deleted_at is not null limit 1) u on true
    where u.erased is null
    on conflict (conversation_id, seq) do update
      set body = excluded.body, mentions = excluded.mentions, tsv = excluded.tsv, version = excluded.version
      where search_messages.version < excluded.version and search_messages.body is not null
  ),
  dlw as (
    insert into search_messages (conversation_id, seq, version) select conv, target, version from dl
    ${TOMBSTONE}
  ),
  held as (
    select ru.conv, ru.first, ru.last from ru
    cross join lateral (
      select indexed_seq from search_heads h where h.conversation_id = ru.conv limit 1 for update skip locked) h
    where h.indexed_seq >= ru.first - 1 and h.indexed_seq < ru.last
  ),
  moved as (
    update search_heads h set indexed_seq = held.last from held where h.conversation_id = held.conv
    returning 1
  ),
  started as (
    insert into search_heads (conversation_id, indexed_seq) select conv, last from ru where first = 1
    on conflict do nothing
    returning 1
  )
  select (select count(*) from moved) + (select count(*) from started) as moved`;
}

/**
 * Brings the conversations in $1 (a JSON array) whose search_heads rows the transaction holds up
 * to date from the log: each one's events after its cursor (at most `perConv`), applied as one
 * statement. Used where the hook's events are not at hand: the sweep (a replica that died with
 * events not indexed, a log written before search existed, runs of seqs that replicas appended
 * in turns) and a batch that failed. A data-modifying CTE cannot see what a sibling wrote, so
 * the statement works out each message's final state first: a message not indexed yet gets its
 * newest edit of the batch; edits of indexed messages update them when newer; a message deleted
 * in the batch, or already redacted in the log, becomes a tombstone.
 */
export function healSql(convs: string[], perConv: number, language: string) {
  const mentions = (col: string) =>
    sql.raw(`case when jsonb_typeof(${col}) = 'array' and jsonb_array_length(${col}) > 0
      then array(select jsonb_array_elements_text(${col})::uuid) end`);
  return sql`
  with ev as (
    select e.conversation_id as conv, e.seq, e.id, e.kind, e.sender_id, e.ts, e.data
    from search_heads h
    cross join lateral (
      select * from log_events e where e.conversation_id = h.conversation_id and e.seq > h.indexed_seq
      order by e.seq limit ${perConv}) e
    where h.conversation_id in (select value::uuid from jsonb_array_elements_text(${JSON.stringify(convs)}::text::jsonb))
  ),
  edits as (
    select distinct on (conv, (data->>'target')::bigint) conv, (data->>'target')::bigint as target,
      data->>'body' as body, data->'mentions' as mentions, seq
    from ev where kind = 'edit' and jsonb_typeof(data->'body') = 'string' and jsonb_typeof(data->'target') = 'number'
    order by conv, (data->>'target')::bigint, seq desc
  ),
  gone as (
    select conv, target, max(v) as v from (
      select conv, (data->>'target')::bigint as target, seq as v from ev
      where kind = 'delete' and jsonb_typeof(data->'target') = 'number'
      union all
      select conv, seq, seq from ev where kind = 'message' and data->>'redacted' = 'true'
    ) x group by conv, target
  ),
  fresh as (
    select m.conv, m.seq, m.id, m.sender_id, m.ts,
      coalesce(ed.body, m.data->>'body') as body,
      case when ed.target is null then m.data->'mentions' else ed.mentions end as mentions,
      greatest(m.seq, coalesce(ed.seq, 0)) as version
    from ev m left join edits ed on ed.conv = m.conv and ed.target = m.seq
    -- Probes by key (a lateral with a LIMIT is never turned into a scan of the table): rows a
    -- replica's batch wrote already are left alone without computing their tsvector.
    left join lateral (
      select true as present from search_messages s where s.conversation_id = m.conv and s.seq = m.seq limit 1) s on true
    left join lateral (select true as erased from users u where u.id = m.sender_id and u.deleted_at is not null limit 1) u on true
    where m.kind = 'message' and jsonb_typeof(m.data->'body') = 'string' and s.present is null and u.erased is null
      and not exists (select 1 from gone g where g.conv = m.conv and g.target = m.seq)
  ),
  ins as (
    insert into search_messages (conversation_id, seq, id, sender_id, ts, body, mentions, tsv, version)
    select conv, seq, id, sender_id, ts, body, ${mentions('mentions')}, ${tsv(language, 'body')}, version from fresh
    on conflict (conversation_id, seq) do nothing
  ),
  upd as (
    update search_messages s set body = ed.body, tsv = ${tsv(language, 'ed.body')}, mentions = ${mentions('ed.mentions')}, version = ed.seq
    from edits ed
    where s.conversation_id = ed.conv and s.seq = ed.target and s.version < ed.seq and s.body is not null
      and not exists (select 1 from gone g where g.conv = ed.conv and g.target = ed.target)
  ),
  tomb as (
    insert into search_messages (conversation_id, seq, version) select conv, target, v from gone
    ${TOMBSTONE}
  ),
  moved as (
    update search_heads h set indexed_seq = m.seq
    from (select conv, max(seq) as seq, count(*) as n from ev group by conv) m
    where h.conversation_id = m.conv
    returning h.conversation_id, m.n
  )
  select conversation_id, n from moved`;
}
