import { z } from 'zod';
import { channels } from '../bus/bus.ts';
import type { Logger } from '../observability/logger.ts';
import type { UserControl } from './ports.ts';

/**
 * The JSON messages hubs send each other on the bus, as zod schemas: another process wrote
 * them, so each is checked where it comes off the bus and a malformed one is logged and
 * dropped. (Conversation channels carry events in their own header format: wire.ts.)
 */

const str = z.string().max(200);

/** A control message for one user's sockets (on the user's channel, or inside a membership message). */
export const userControlMessage: z.ZodType<UserControl> = z.discriminatedUnion('k', [
  z.object({ k: z.literal('added'), conv: str, fromSeq: z.number().int().min(0), frame: z.string() }),
  z.object({ k: z.literal('removed'), conv: str, frame: z.string() }),
  z.object({ k: z.literal('block'), blockers: z.array(str).max(2), conv: str.nullable(), shared: z.array(str) }),
  z.object({ k: z.literal('revoke'), sessions: z.union([z.array(str), z.literal('all')]) }),
  z.object({ k: z.literal('frame'), frame: z.string() }),
  z.object({
    k: z.literal('limits'),
    limits: z.object({ ratePerS: z.number(), burst: z.number(), maxConnections: z.number() }),
    frame: z.string(),
  }),
]);

/** A membership or block change for several users, with where to confirm it was applied. */
export const membershipMessage = z.object({
  users: z.array(str),
  ctl: userControlMessage,
  confirm: z.object({ to: z.string().startsWith(channels.confirm('')), id: str }).optional(),
});

/** One presence change: user, status, lastSeen (ms; 0 when online), the user's conversations. */
export const presenceChange = z.tuple([str, z.enum(['online', 'offline']), z.number(), z.array(str)]);
export type PresenceChange = z.infer<typeof presenceChange>;
/** The presence channel carries the changes one replica gathered, in one message. */
export const presenceBatch = z.array(presenceChange);

/** Parses a bus payload against its schema; null (and a warning naming the channel) when it does not fit. */
export function parseBusJson<T>(schema: z.ZodType<T>, payload: string, logger: Logger, channel: string): T | null {
  let json: unknown;
  try {
    json = JSON.parse(payload);
  } catch {
    json = undefined; // not JSON: the schema refuses it below, with the same warning
  }
  const r = schema.safeParse(json);
  if (r.success) return r.data;
  logger.warn({ channel, issue: r.error.issues[0]?.message }, 'malformed message on the bus');
  return null;
}
