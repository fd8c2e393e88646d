import type { Database } from '../db/database.ts';
import { DomainError } from '../errors.ts';
import type { Authenticator, DirectBlock, SocketLogin, SocketUser } from '../hub/ports.ts';
import type { AccessTokens } from './tokens.ts';

/*
 * One prepared statement per socket: the session check (live session, user not deleted), the
 * identity for `ready`, the conversation ids, and the contacts for the presence snapshot. No
 * row: the session ended or the user is gone. The aggregates are json so both drivers hand back
 * plain arrays without per-driver array parsing. Read cursors are not read here: `resume` asks
 * for them later, after the socket follows its conversations, so a read on another device in
 * between is not missed (marking read on one device reaches the user's other sessions).
 *
 * The contacts come through a LATERAL with a LIMIT, which PostgreSQL cannot flatten into a
 * join: one index scan on the members key per conversation of the user. As a plain join the
 * planner, without fresh statistics (a burst of sign-ups), chose a hash join over a sequential
 * scan of all members: 2.1 ms of backend CPU per socket at 11k members against 0.18 ms, and
 * the scan grows with the table.
 *
 * The user's subscription (plan and period end) comes in the same row, so the socket's
 * real-time limits need no statement of their own; so do the user's blocked direct
 * conversations (a block either way: `mine` when the user blocked), through the two block
 * indexes and the direct key (usually no row at all).
 */
export const SOCKET_LOGIN_SQL = `
select u.username, p.display_name,
  (select coalesce(json_agg(m.conversation_id), '[]'::json)
     from members m where m.user_id = $1) as convs,
  (select coalesce(json_agg(c.user_id), '[]'::json) from (
     select distinct m2.user_id from members m1
     cross join lateral (
       select m.user_id from members m
       where m.conversation_id = m1.conversation_id and m.user_id <> $1
       limit $3) m2
     where m1.user_id = $1
     limit $3) c) as contacts,
  (select json_build_object('planId', ps.plan_id, 'periodEnd', (extract(epoch from ps.period_end) * 1000)::bigint)
     from payment_subscriptions ps where ps.user_id = $1) as subscription,
  (select coalesce(json_object_agg(d.id, d.side), '{}'::json) from (
     select c.id, case when bool_or(x.mine) then 'mine' else 'theirs' end as side
     from (select b.blocked_id as other, true as mine from blocks b where b.blocker_id = $1
           union all
           select b.blocker_id, false from blocks b where b.blocked_id = $1) x
     cross join lateral (
       select c.id from conversations c
       where c.direct_key = least($1::uuid, x.other)::text || ':' || greatest($1::uuid, x.other)::text
       limit 1) c
     group by c.id) d) as blocked
from sessions s
join users u on u.id = s.user_id
join profiles p on p.user_id = u.id
where s.id = $2 and s.user_id = $1 and s.revoked_at is null and u.deleted_at is null`;

type Json<T> = T | string;
const subscriptionOf = (s: { planId: string; periodEnd: number | string }) => ({ planId: s.planId, periodEnd: Number(s.periodEnd) });
const json = <T>(v: Json<T>): T => (typeof v === 'string' ? (JSON.parse(v) as T) : v);

/** The socket side of auth: the JWT check, then one statement against PostgreSQL or PGlite. */
export class SocketAuthenticator implements Authenticator {
  constructor(private readonly d: { tokens: AccessTokens; database: Database }) {}

  async verify(token: string): Promise<SocketUser> {
    const claims = await this.d.tokens.verify(token);
    return { id: claims.sub, sessionId: claims.sid };
  }

  async login(user: SocketUser, contactsMax: number): Promise<SocketLogin> {
    const [row] = await this.d.database.query<{
      username: string;
      display_name: string;
      convs: Json<string[]>;
      contacts: Json<string[]>;
      subscription: Json<{ planId: string; periodEnd: number | string }> | null;
      blocked: Json<Record<string, DirectBlock>>;
    }>(SOCKET_LOGIN_SQL, [user.id, user.sessionId, contactsMax]);
    if (!row) throw new DomainError('UNAUTHORIZED', 'session ended');
    return {
      user,
      info: { id: user.id, username: row.username, displayName: row.display_name },
      convs: json(row.convs),
      contacts: json(row.contacts),
      subscription: row.subscription == null ? null : subscriptionOf(json(row.subscription)),
      blocked: json(row.blocked),
    };
  }
}
