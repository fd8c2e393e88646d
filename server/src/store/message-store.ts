/**
 * The conversation event log: per conversation an append-only sequence of
 * events numbered by `seq`, 1, 2, 3, … with no gaps and no reuse. Two implementations:
 * PostgreSQL (message-store.postgres.ts, the default; PGlite embedded) and Cassandra
 * (message-store.cassandra.ts). Both pass test/contracts/message-store.contract.ts.
 */

export type EventKind = 'message' | 'edit' | 'delete' | 'reaction' | 'member' | 'system';

export interface StoredEvent {
  conv: string;
  seq: number;
  /** Globally unique event id (UUID). */
  id: string;
  kind: EventKind;
  /** The acting user, or null for system events. */
  from: string | null;
  /** Milliseconds since the epoch, set by the hub that accepted the event. */
  ts: number;
  /** The sender's idempotency key, for `message` events sent over the socket. */
  cid?: string;
  /** Kind-specific fields, e.g. `{ body, replyTo, mentions }` for a message. */
  data: Record<string, unknown>;
}

export type EventDraft = Omit<StoredEvent, 'conv' | 'seq'>;

export interface AppendResult {
  event: StoredEvent;
  /** True when (conv, from, cid) was already stored: `event` is the original and nothing new was written. */
  duplicate: boolean;
  /**
   * Only from a store with `movesSenderCursor`, on the newest new `message` of its sender in the
   * append: the sender's read cursor, moved to this event's seq in the same commit (a sender has
   * read their own message). Absent when the cursor did not move (not a member, or already past).
   */
  senderRead?: number;
}

/** One conversation's drafts inside a multi-conversation append. */
export interface AppendBatch {
  conv: string;
  drafts: EventDraft[];
}

export interface ReadRange {
  /** Exclusive lower bound. */
  afterSeq?: number;
  /** Exclusive upper bound. */
  beforeSeq?: number;
  /** At most this many events. */
  limit: number;
  /** With only `beforeSeq`, the newest `limit` events before it are returned (still in ascending order). */
}

/**
 * A conversation log's head with its epoch. The epoch is 1 until a restore (or another rewind)
 * resets the log to an earlier point; the rewind sets a new, higher epoch, after which the seqs
 * above `restoredSeq` are issued again with other content. A position (epoch, seq) from another
 * epoch is void: the hub answers it with `rewound`, never with the reissued seqs.
 */
export interface LogHead {
  seq: number;
  epoch: number;
  /** The head the last rewind left (absent: never rewound): acked seqs above it from an older epoch were lost. */
  restoredSeq?: number;
}

export interface RewindOutcome {
  /** Conversations whose epoch changed. */
  conversations: number;
  /** The epoch given to logs that had none above it (the restore's Unix seconds). */
  epoch: number;
  /**
   * Conversations whose newest events below the restored head are not all in the log (a store
   * whose tables are snapshotted one after another, taken while hubs wrote): readers see holes.
   */
  incomplete?: string[];
}

export interface MessageStore {
  /**
   * True when an append also moves each sender's read cursor (members.read_seq) to their newest
   * new `message` in the same commit, and says so in `AppendResult.senderRead`: a store that
   * shares the database with the memberships (PostgreSQL). Otherwise the hub moves it itself.
   */
  readonly movesSenderCursor?: boolean;
  /** Creates what the store needs (tables, keyspace). Idempotent. */
  init(): Promise<void>;
  /**
   * Appends drafts to one conversation, in order, giving them consecutive seqs. Resolves only
   * once the events are durable. A draft whose (from, cid) is already stored in this
   * conversation is not written again: its result carries the original event and `duplicate`.
   * Never leaves a seq that a reader would wait on forever.
   */
  append(conv: string, drafts: EventDraft[]): Promise<AppendResult[]>;
  /**
   * Optional: appends several conversations' drafts at once (group commit across
   * conversations), each batch with exactly the semantics of `append`; outcomes in batch
   * order. A batch the store refuses (bad data) fails alone, never the others. A store without
   * it gets one `append` per conversation, in parallel.
   */
  appendMany?(batches: AppendBatch[]): Promise<PromiseSettledResult<AppendResult[]>[]>;
  /** Events in ascending seq order within the range. */
  read(conv: string, range: ReadRange): Promise<StoredEvent[]>;
  /** The highest seq of each conversation (0 for one with no events). */
  lastSeqs(convs: string[]): Promise<Map<string, number>>;
  /** The head and epoch of each conversation (`{seq: 0, epoch: 1}` for one with no events). */
  heads(convs: string[]): Promise<Map<string, LogHead>>;
  /**
   * The step after a restore from backup (or any rewind of the log), run once with no hub
   * serving the log: every log the store holds, and each of `convs` (conversations it may hold
   * nothing of, whose events after the recovery point clients may still have seen), gets a new
   * epoch, the restore's Unix seconds (`now`, ms) or the old epoch + 1 when that is higher, and
   * its head as `restoredSeq`. Appends keep the epoch; heads report it.
   */
  rewind(convs: string[], now?: number): Promise<RewindOutcome>;
  /** The newest event of kind `message` of each conversation that has one. */
  lastMessages(convs: string[]): Promise<Map<string, StoredEvent>>;
  /**
   * Erases the text of events in place (redactedData): for deleted messages and for every event
   * of an erased account that carries text. The events and their seqs stay.
   */
  redact(conv: string, seqs: number[]): Promise<void>;
  /** Seqs of the events `from` wrote in `conv` that carry their text (carriesText; for export and erasure). */
  seqsBySender(conv: string, from: string): Promise<number[]>;
  close(): Promise<void>;
}

/**
 * The store refused an append for its data (a value the database cannot take), before writing
 * anything of it: each of its drafts may be tried again on its own, so that one bad draft does
 * not fail the others it was grouped with.
 */
export class AppendRefused extends Error {
  constructor(readonly reason: unknown) {
    super(`append refused: ${reason instanceof Error ? reason.message : String(reason)}`, { cause: reason });
    this.name = 'AppendRefused';
  }
}

/** Whether an event carries text its author wrote: a message's or an edit's body, a tip's note. */
export function carriesText(e: Pick<StoredEvent, 'kind' | 'data'>): boolean {
  return e.kind === 'message' || e.kind === 'edit' || (e.kind === 'system' && typeof e.data.note === 'string');
}

/**
 * An event's data with its text erased: body null (messages and edits), attachments and note
 * removed, `redacted: true`; every other field stays. REDACTED_DATA_SQL is the same in SQL.
 */
export function redactedData(kind: EventKind, data: Record<string, unknown>): Record<string, unknown> {
  const { attachments: _files, note: _note, body: _body, ...kept } = data;
  return kind === 'system' ? { ...kept, redacted: true } : { ...kept, body: null, redacted: true };
}

/** redactedData over the `kind` and `data` columns of log_events. */
export const REDACTED_DATA_SQL = `(data - 'body' - 'attachments' - 'note') || case when kind = 'system'
  then '{"redacted":true}'::jsonb else '{"body":null,"redacted":true}'::jsonb end`;

/** carriesText over the `kind` and `data` columns of log_events. */
export const CARRIES_TEXT_SQL = `(kind in ('message', 'edit') or (kind = 'system' and jsonb_typeof(data->'note') = 'string'))`;

/** `store.appendMany` where the store has it, else one `append` per conversation in parallel. */
export function appendBatches(store: MessageStore, batches: AppendBatch[]): Promise<PromiseSettledResult<AppendResult[]>[]> {
  if (store.appendMany) return store.appendMany(batches);
  return Promise.allSettled(batches.map((b) => store.append(b.conv, b.drafts)));
}
