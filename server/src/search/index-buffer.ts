import type { StoredEvent } from '../store/message-store.ts';

/** A message's row as the index stores it; `version` is the seq of the event that gave it its text. */
export interface IndexRow {
  conv: string;
  seq: number;
  id: string;
  sender: string | null;
  /** ISO time. */
  ts: string;
  body: string;
  mentions: string[] | null;
  version: number;
}

/** An edit of a message this buffer does not hold (indexed before, or by another replica). */
export interface IndexEdit {
  conv: string;
  target: number;
  body: string;
  mentions: string[] | null;
  version: number;
}

/** A delete: the message's row becomes a tombstone. */
export interface IndexDelete {
  conv: string;
  target: number;
  version: number;
}

/** Per conversation, the events `first`..`last` (no gap) that a batch applies: the cursor may move over them. */
export interface IndexRun {
  conv: string;
  first: number;
  last: number;
}

export interface IndexBatch {
  rows: IndexRow[];
  edits: IndexEdit[];
  deletes: IndexDelete[];
  runs: IndexRun[];
  /** Every conversation with an event in the batch. */
  convs: string[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const mentionsOf = (m: unknown): string[] | null => {
  if (!Array.isArray(m)) return null;
  const ids = m.filter((x): x is string => typeof x === 'string' && UUID.test(x));
  return ids.length ? ids : null;
};
const targetOf = (e: StoredEvent) => (typeof e.data.target === 'number' && Number.isSafeInteger(e.data.target) ? e.data.target : null);

/**
 * The events of one replica's appends waiting to be indexed, already reduced to what the index
 * must become: a message's row with its newest text (an edit of a message still here rewrites
 * it), edits of messages indexed earlier or elsewhere, deletes as tombstones. Fed by the hub's
 * after-append hook, which gives each conversation's events in seq order, so nothing is read
 * back from the log.
 */
export class IndexBuffer {
  private rows = new Map<string, IndexRow>();
  private edits = new Map<string, IndexEdit>();
  private deletes = new Map<string, IndexDelete>();
  /** Per conversation: the first seq held, the end of the gapless run from it, and whether a gap closed the run. */
  private runs = new Map<string, { first: number; last: number; closed: boolean }>();
  private events = 0;

  /** Events held (what a flush would apply). */
  get size() {
    return this.events;
  }

  add(e: StoredEvent) {
    this.events++;
    const run = this.runs.get(e.conv);
    if (!run) this.runs.set(e.conv, { first: e.seq, last: e.seq, closed: false });
    else if (!run.closed) {
      // Another replica appended the seqs in between: the cursor stops before them.
      if (e.seq === run.last + 1) run.last = e.seq;
      else run.closed = true;
    }
    if (e.kind === 'message') {
      if (typeof e.data.body !== 'string') return;
      this.rows.set(`${e.conv} ${e.seq}`, {
        conv: e.conv,
        seq: e.seq,
        id: e.id,
        sender: e.from,
        ts: new Date(e.ts).toISOString(),
        body: e.data.body,
        mentions: mentionsOf(e.data.mentions),
        version: e.seq,
      });
      return;
    }
    const target = targetOf(e);
    if (target === null) return;
    const key = `${e.conv} ${target}`;
    if (e.kind === 'edit' && typeof e.data.body === 'string') {
      if (this.deletes.has(key)) return;
      const mentions = mentionsOf(e.data.mentions);
      const row = this.rows.get(key);
      if (row) Object.assign(row, { body: e.data.body, mentions, version: e.seq });
      else this.edits.set(key, { conv: e.conv, target, body: e.data.body, mentions, version: e.seq });
    } else if (e.kind === 'delete') {
      // A tombstone even for a message still here: a sweep may have read it from the log already.
      this.rows.delete(key);
      this.edits.delete(key);
      this.deletes.set(key, { conv: e.conv, target, version: e.seq });
    }
  }

  /** Everything held, emptied. */
  take(): IndexBatch {
    const batch: IndexBatch = {
      rows: [...this.rows.values()],
      edits: [...this.edits.values()],
      deletes: [...this.deletes.values()],
      runs: [...this.runs].map(([conv, r]) => ({ conv, first: r.first, last: r.last })),
      convs: [...this.runs.keys()],
    };
    this.rows = new Map();
    this.edits = new Map();
    this.deletes = new Map();
    this.runs = new Map();
    this.events = 0;
    return batch;
  }
}
