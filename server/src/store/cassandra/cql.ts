import { createHash } from 'node:crypto';
import type cassandra from 'cassandra-driver';
import type { EventDraft, StoredEvent } from '../message-store.ts';

/** Statements, row decoding and small helpers shared by the parts of the Cassandra message store. */

export type Row = cassandra.types.Row;

/** Seqs per `events` partition: bucket = floor(seq / BUCKET_SIZE). Changing it needs a data migration. */
export const BUCKET_SIZE = 1000;

const EVENT_COLS = 'conversation_id, seq, id, kind, sender_id, cid, ts, data';
export const Q = {
  insertEvent: `INSERT INTO events (conversation_id, bucket, seq, id, kind, sender_id, cid, ts, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  eventRange: `SELECT ${EVENT_COLS} FROM events WHERE conversation_id = ? AND bucket = ? AND seq >= ? AND seq <= ?`,
  eventRangeDesc: `SELECT ${EVENT_COLS} FROM events WHERE conversation_id = ? AND bucket = ? AND seq <= ? ORDER BY seq DESC`,
  eventsIn: `SELECT ${EVENT_COLS} FROM events WHERE conversation_id = ? AND bucket = ? AND seq IN ?`,
  eventOne: `SELECT ${EVENT_COLS} FROM events WHERE conversation_id = ? AND bucket = ? AND seq = ?`,
  seqRange: `SELECT seq FROM events WHERE conversation_id = ? AND bucket = ? AND seq >= ? AND seq <= ?`,
  setData: `UPDATE events SET data = ? WHERE conversation_id = ? AND bucket = ? AND seq = ?`,
  leaseRow: `SELECT last_seq, holder, lease_epoch FROM conversation_cids WHERE conversation_id = ? LIMIT 1`,
  leaseTake: `UPDATE conversation_cids SET holder = ?, lease_epoch = ?, last_seq = ? WHERE conversation_id = ? IF holder = ? AND lease_epoch = ? AND last_seq = ?`,
  leaseExtend: `UPDATE conversation_cids SET last_seq = ? WHERE conversation_id = ? IF holder = ? AND lease_epoch = ?`,
  leaseRelease: `UPDATE conversation_cids SET last_seq = ?, holder = null WHERE conversation_id = ? IF holder = ? AND lease_epoch = ?`,
  leaseAsk: `INSERT INTO lease_requests (holder, conversation_id, requested_at) VALUES (?, ?, ?) USING TTL 5`,
  leaseAsked: `SELECT conversation_id, requested_at FROM lease_requests WHERE holder = ?`,
  instanceBeat: `UPDATE store_instances SET alive_until = ? WHERE id = ?`,
  instanceRow: `SELECT alive_until FROM store_instances WHERE id = ?`,
  legacyHead: `SELECT last_seq FROM conversation_heads WHERE conversation_id = ?`,
  head: `SELECT durable_seq, last_message_seq, epoch, restored_seq FROM conversation_heads WHERE conversation_id = ?`,
  allHeads: `SELECT conversation_id, durable_seq, epoch FROM conversation_heads`,
  setEpoch: `UPDATE conversation_heads USING TIMESTAMP ? SET epoch = ?, restored_seq = ? WHERE conversation_id = ?`,
  durable: `UPDATE conversation_heads USING TIMESTAMP ? SET durable_seq = ? WHERE conversation_id = ?`,
  durableMsg: `UPDATE conversation_heads USING TIMESTAMP ? SET durable_seq = ?, last_message_seq = ? WHERE conversation_id = ?`,
  /** Only for claims found in event_cids (pre-002), adopted once. */
  claim: `INSERT INTO conversation_cids (conversation_id, sender_id, cid, event_id, claimed_at, seq, seq_event_id) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
  claimKeyInsert: `INSERT INTO cid_claims (claim, event_id, seq) VALUES (?, ?, ?)`,
  claimKeysIn: `SELECT claim, event_id, seq FROM cid_claims WHERE claim IN ?`,
  oldClaimAny: `SELECT cid FROM conversation_cids WHERE conversation_id = ? LIMIT 1`,
  legacyAny: `SELECT conversation_id FROM event_cids LIMIT 1`,
  legacyClaimRow: `SELECT event_id, claimed_at, seq, seq_event_id FROM event_cids WHERE conversation_id = ? AND sender_id = ? AND cid = ?`,
  senderInsert: `INSERT INTO sender_messages (conversation_id, sender_id, seq) VALUES (?, ?, ?)`,
  senderSeqs: `SELECT seq FROM sender_messages WHERE conversation_id = ? AND sender_id = ?`,
};

/** Looks up n (sender, cid) claims of one conversation in conversation_cids (written before migration 003); a statement text per n. */
export const claimLookup = (n: number) =>
  `SELECT sender_id, cid, event_id, seq, seq_event_id FROM conversation_cids WHERE conversation_id = ? AND (sender_id, cid) IN (${Array(n).fill('(?, ?)').join(', ')})`;

/** The cid_claims key of a (conversation, sender, cid). */
export const claimId = (conv: unknown, from: unknown, cid: unknown) =>
  `${String(conv).toLowerCase()}:${String(from).toLowerCase()}:${String(cid)}`;

export const bucketOf = (seq: number) => Math.floor(seq / BUCKET_SIZE);
export const num = (v: unknown): number | null => (v == null ? null : typeof v === 'number' ? v : (v as cassandra.types.Long).toNumber());
export const str = (v: unknown): string | null => (v == null ? null : String(v));
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const keyOf = (d: EventDraft) => (d.cid != null && d.from != null ? `${d.from}\u0000${d.cid}` : null);

let lastMicros = 0;
/** Write timestamps in µs, strictly increasing within the process. */
export function nowMicros(): number {
  lastMicros = Math.max(Date.now() * 1000, lastMicros + 1);
  return lastMicros;
}

/** The same id for the void filler of a seq whoever writes it, so concurrent fillers agree. */
export function voidId(conv: string, seq: number): string {
  const h = createHash('sha1').update(`hubbub:void:${conv}:${seq}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

export const toEvent = (r: Row): StoredEvent => {
  const e: StoredEvent = {
    conv: String(r.get('conversation_id')),
    seq: num(r.get('seq'))!,
    id: String(r.get('id')),
    kind: r.get('kind') as StoredEvent['kind'],
    from: str(r.get('sender_id')),
    ts: (r.get('ts') as Date).getTime(),
    data: JSON.parse(r.get('data') as string) as Record<string, unknown>,
  };
  const cid = r.get('cid') as string | null;
  if (cid != null) e.cid = cid;
  return e;
};

/** Seqs grouped by their `events` partition. */
export function byBucket(seqs: Iterable<number>): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const s of seqs) {
    const b = bucketOf(s);
    const list = out.get(b);
    if (list) list.push(s);
    else out.set(b, [s]);
  }
  return out;
}

export async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Bounded map: forgets the oldest entries (these are only hints that save a round trip). */
export function remember(m: Map<string, number>, k: string, v: number) {
  if ((m.get(k) ?? -1) >= v) return;
  m.delete(k);
  m.set(k, v);
  if (m.size > 50_000) m.delete(m.keys().next().value!);
}

export interface Head {
  durable: number;
  lastMessage: number | null;
  epoch: number;
  /** The durable_seq the last rewind left; null when never rewound. */
  restoredSeq: number | null;
}

/** The driver client with the store's defaults (prepared statements) and the reads every part needs. */
export class Cql {
  constructor(readonly client: cassandra.Client) {}

  q(query: string, params: unknown[], opts: cassandra.QueryOptions = {}) {
    return this.client.execute(query, params, { prepare: true, ...opts });
  }

  /** Every row of a query, page by page. */
  async all(query: string, params: unknown[]): Promise<Row[]> {
    const rows: Row[] = [];
    let pageState: string | undefined;
    do {
      const rs = await this.client.execute(query, params, { prepare: true, fetchSize: 5000, pageState, isIdempotent: true });
      rows.push(...rs.rows);
      pageState = rs.pageState ?? undefined;
    } while (pageState);
    return rows;
  }

  /** A conversation's head row: published seq, newest message, and log epoch (1 when never rewound). */
  async head(conv: string): Promise<Head> {
    const row = (await this.q(Q.head, [conv], { isIdempotent: true })).first();
    return {
      durable: num(row?.get('durable_seq')) ?? 0,
      lastMessage: num(row?.get('last_message_seq')),
      epoch: num(row?.get('epoch')) ?? 1,
      restoredSeq: num(row?.get('restored_seq')),
    };
  }

  async readOne(conv: string, seq: number): Promise<StoredEvent | null> {
    const row = (await this.q(Q.eventOne, [conv, bucketOf(seq), seq], { isIdempotent: true })).first();
    return row ? toEvent(row) : null;
  }
}
