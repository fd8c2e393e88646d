import cassandra from 'cassandra-driver';
import type { Logger } from '../../observability/logger.ts';
import { carriesText, type StoredEvent } from '../message-store.ts';
import { BUCKET_SIZE, bucketOf, byBucket, claimId, type Cql, nowMicros, num, Q, remember, sleep, voidId } from './cql.ts';
import { MessageStoreUnavailableError } from './errors.ts';

type Statement = { query: string; params: unknown[]; bytes: number };

/**
 * Estimated mutation bytes per batch: a batch over several partitions above
 * batch_size_warn_threshold (5 KiB by default) makes Cassandra log a warning and send one to
 * the client for every batch, which costs both sides CPU (and fills a log nobody drains).
 */
const BATCH_BYTES = 3_800;

/** A raise of one conversation's durable_seq. */
export interface Publication {
  conv: string;
  epoch: number;
  end: number;
  /** The last message event among the seqs published, if any (last_message_seq). */
  lastMessage: number | undefined;
}

/**
 * durable_seq's write timestamp: epoch * 2^32 + seq, so within a lease the highest seq wins
 * whatever order writes arrive in, and a newer lease's writes beat any late one of an older
 * lease (epoch 0: written before leases, timestamp = seq).
 */
const durableTs = (epoch: number, seq: number) =>
  cassandra.types.Long.fromNumber(epoch).shiftLeft(32).add(cassandra.types.Long.fromNumber(seq));

/**
 * The write side of the event log: events and their indexes, void fillers, and `durable_seq`,
 * the seq up to which every event is written and which readers never look past.
 */
export class EventLog {
  /** A lower bound of durable_seq per conversation. */
  private readonly durableHint = new Map<string, number>();

  constructor(
    private readonly cql: Cql,
    private readonly logger: Logger,
    private readonly takeoverMs: number,
  ) {}

  /**
   * Events (of one or more conversations) with their cid claims and sender index, all with
   * write timestamp `ts`, as unlogged batches of up to BATCH_BYTES.
   */
  async writeEvents(events: StoredEvent[], ts: number) {
    const statements: Statement[] = [];
    for (const e of events) {
      const data = JSON.stringify(e.data);
      statements.push({
        query: Q.insertEvent,
        params: [e.conv, bucketOf(e.seq), e.seq, e.id, e.kind, e.from, e.cid ?? null, new Date(e.ts), data],
        bytes: data.length + 180,
      });
    }
    statements.push(...this.indexStatements(events));
    await this.batches(statements, ts);
  }

  /** Only the cid claims and sender index of events already written (a lease taker adopting a dead holder's events). */
  async writeIndexes(_conv: string, events: StoredEvent[]) {
    const statements = this.indexStatements(events);
    if (statements.length) await this.batches(statements, nowMicros());
  }

  private indexStatements(events: StoredEvent[]): Statement[] {
    const out: Statement[] = [];
    for (const e of events) {
      if (e.cid != null && e.from != null)
        out.push({ query: Q.claimKeyInsert, params: [claimId(e.conv, e.from, e.cid), e.id, e.seq], bytes: 120 });
    }
    // Every event with its author's text (messages, edits, tip notes): what an erasure redacts.
    for (const e of events)
      if (carriesText(e) && e.from != null) out.push({ query: Q.senderInsert, params: [e.conv, e.from, e.seq], bytes: 60 });
    return out;
  }

  private async batches(statements: Statement[], ts: number | undefined) {
    const opts = { prepare: true, logged: false, timestamp: ts, isIdempotent: true };
    const jobs: Promise<unknown>[] = [];
    let batch: { query: string; params: unknown[] }[] = [];
    let bytes = 0;
    statements.forEach((st, i) => {
      batch.push({ query: st.query, params: st.params });
      bytes += st.bytes;
      const next = statements[i + 1];
      if (!next || batch.length >= 100 || bytes + next.bytes > BATCH_BYTES) {
        jobs.push(this.cql.client.batch(batch, opts));
        batch = [];
        bytes = 0;
      }
    });
    await Promise.all(jobs);
  }

  async writeVoids(conv: string, seqs: number[]) {
    if (!seqs.length) return;
    const ts = nowMicros();
    await Promise.all(
      [...byBucket(seqs)].map(([b, ss]) =>
        this.cql.client.batch(
          ss.map((s) => ({
            query: Q.insertEvent,
            params: [conv, b, s, voidId(conv, s), 'system', null, null, new Date(), '{"void":true}'],
          })),
          { prepare: true, logged: false, timestamp: ts, isIdempotent: true },
        ),
      ),
    );
  }

  /** Raises durable_seq to `end` (the caller knows every seq up to it is written), under the lease's epoch. */
  async publish(conv: string, epoch: number, end: number, lastMessage: number | undefined) {
    const [failed] = await this.publishMany([{ conv, epoch, end, lastMessage }]);
    if (failed) throw failed;
  }

  /** Several publications as shared batches; a publication whose batch failed is retried alone. Per publication: its error, if any. */
  async publishMany(pubs: Publication[]): Promise<(unknown | undefined)[]> {
    const statement = (p: Publication): Statement => {
      const ts = durableTs(p.epoch, p.end);
      return p.lastMessage === undefined
        ? { query: Q.durable, params: [ts, p.end, p.conv], bytes: 90 }
        : { query: Q.durableMsg, params: [ts, p.end, p.lastMessage, p.conv], bytes: 110 };
    };
    const out: (unknown | undefined)[] = pubs.map(() => undefined);
    if (!pubs.length) return out;
    try {
      if (pubs.length === 1) await this.cql.q(statement(pubs[0]!).query, statement(pubs[0]!).params, { isIdempotent: true });
      else await this.batches(pubs.map(statement), undefined);
    } catch {
      await Promise.all(
        pubs.map(async (p, i) => {
          const st = statement(p);
          for (let attempt = 1; ; attempt++) {
            await sleep(50 * 4 ** (attempt - 1));
            try {
              await this.cql.q(st.query, st.params, { isIdempotent: true });
              return;
            } catch (err) {
              if (attempt >= 2) {
                out[i] = new MessageStoreUnavailableError(`could not publish seqs of ${p.conv}`, { cause: err });
                return;
              }
            }
          }
        }),
      );
    }
    pubs.forEach((p, i) => out[i] === undefined && remember(this.durableHint, p.conv, p.end));
    return out;
  }

  /**
   * Waits until durable_seq reaches `target`; when it makes no progress for takeoverMs, voids
   * the unwritten seqs up to it (their appender crashed). Only seqs allocated before leases
   * (migration 003) can be in that state when a free lease is acquired.
   */
  async waitDurable(conv: string, target: number) {
    if (target <= 0 || (this.durableHint.get(conv) ?? 0) >= target) return;
    let seen = -1;
    let since = performance.now();
    for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
      const durable = (await this.cql.head(conv)).durable;
      if (durable >= target) {
        remember(this.durableHint, conv, durable);
        return;
      }
      if (durable !== seen) {
        seen = durable;
        since = performance.now();
      } else if (performance.now() - since >= this.takeoverMs) {
        await this.fillHoles(conv, durable + 1, target);
        return;
      }
      await sleep(delay * (0.5 + Math.random()));
    }
  }

  /** Voids the unwritten seqs in [from, to]: their appender stopped making progress (crashed). */
  private async fillHoles(conv: string, from: number, to: number) {
    const present = new Set<number>();
    for (let b = bucketOf(from); b <= bucketOf(to); b++) {
      const rows = await this.cql.all(Q.seqRange, [
        conv,
        b,
        Math.max(from, b * BUCKET_SIZE),
        Math.min(to, b * BUCKET_SIZE + BUCKET_SIZE - 1),
      ]);
      for (const r of rows) present.add(num(r.get('seq'))!);
    }
    const missing: number[] = [];
    for (let s = from; s <= to; s++) if (!present.has(s)) missing.push(s);
    this.logger.warn({ conv, from, to, missing: missing.length }, 'seqs stalled; filling their holes with void events');
    await this.writeVoids(conv, missing);
  }
}
