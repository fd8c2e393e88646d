import type { Database } from '../db/database.ts';
import type { RewindOutcome } from './message-store.ts';

/**
 * After a restore from backup (or any rewind of the message log), every conversation's log gets
 * a new epoch, and the head it was left at is kept as `restored_seq`: the seqs above it will be
 * issued again with other content, so a client position from before is void (the hub answers it
 * with `rewound`). Conversations with no head row yet get one (a conversation with no events at
 * the recovery point may have had some after it, which clients saw): those of the
 * `conversations` table and those named in $2.
 *
 * The new epoch is the restore's time in Unix seconds, or the old epoch + 1 when that is higher:
 * a later restore from an older backup brings back an older epoch, and the wall clock still puts
 * the new one above every epoch any client can hold. Run it once per restore, with the hubs
 * stopped (they keep each feed's epoch while it lives).
 */
export const REWIND_LOGS_SQL = `
  with created as (
    insert into log_heads (conversation_id, last_seq, epoch, restored_seq)
    select c.id, 0, $1::bigint, 0
    from (select id from conversations union select q.conv::uuid from jsonb_array_elements_text($2::text::jsonb) as q(conv)) c
    where not exists (select 1 from log_heads h where h.conversation_id = c.id)
    on conflict (conversation_id) do nothing
    returning conversation_id
  ),
  bumped as (
    update log_heads set epoch = greatest(epoch + 1, $1::bigint), restored_seq = last_seq
    returning conversation_id
  )
  select (select count(*) from bumped)::int as bumped, (select count(*) from created)::int as created`;

/** Gives every conversation's log a new epoch (see REWIND_LOGS_SQL). `now` in ms, for tests. */
export async function rewindLogs(database: Database, now = Date.now(), convs: string[] = []): Promise<RewindOutcome> {
  const epoch = Math.floor(now / 1000);
  const [row] = await database.query<{ bumped: number; created: number }>(REWIND_LOGS_SQL, [epoch, JSON.stringify(convs)]);
  return { conversations: Number(row?.bumped ?? 0) + Number(row?.created ?? 0), epoch };
}
