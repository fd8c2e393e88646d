import type { Connection } from './connection.ts';
import type { Presence } from '../presence/presence.ts';
import { encode } from './wire.ts';

/**
 * Presence for contacts made after a socket connected. A socket learns its contacts' presence at
 * connect and their changes later; someone met in a new conversation (a DM just started, a group
 * one was added to) would stay "offline" on both sides until a reconnect. So when a socket takes
 * a conversation it was added to, it is told which members are online now, and the members are
 * told it is online (an `online` for someone already known online changes nothing).
 */
export async function presenceOnJoin(
  d: { presence: Presence; publishFrame(conv: string, frame: string, skipUser: string): Promise<void> },
  conn: Connection,
  conv: string,
  conversationFrame: string,
) {
  let members: string[];
  try {
    const f = JSON.parse(conversationFrame) as { conversation?: { members?: { userId?: unknown }[] } };
    members = (f.conversation?.members ?? []).map((m) => m.userId).filter((u): u is string => typeof u === 'string' && u !== conn.user.id);
  } catch {
    return; // the frame is the hub's own JSON; nothing to say without its member list
  }
  const online = members.length ? await d.presence.online(members) : new Set<string>();
  if (!conn.closed && online.size)
    conn.batch(() => {
      for (const u of online) conn.send(encode({ type: 'presence', user: u, status: 'online' }));
    });
  await d.publishFrame(conv, encode({ type: 'presence', user: conn.user.id, status: 'online' }), conn.user.id);
}
