import cassandra from 'cassandra-driver';
import type { Logger } from '../../observability/logger.ts';
import { type Cql, nowMicros, num, Q, remember, type Row, sleep, str } from './cql.ts';
import { MessageStoreUnavailableError } from './errors.ts';

const { consistencies } = cassandra.types;

export interface Allocation {
  start: number;
  end: number;
  /** Write timestamp of the events (µs), fixed before the first write so retries cannot outrun a void filler. */
  ts: number;
  at: number;
}

/**
 * Hands out consecutive seqs per conversation: one CAS on the conversation's head row
 * (`IF last_seq = ?`) allocates the seqs of a whole batch; contention retries with jittered backoff.
 */
export class SeqAllocator {
  /** Last known allocated seq per conversation: the expected value of the next CAS. */
  private readonly lastSeqHint = new Map<string, number>();

  constructor(
    private readonly cql: Cql,
    private readonly logger: Logger,
  ) {}

  async allocate(conv: string, n: number): Promise<Allocation> {
    const allocId = cassandra.types.Uuid.random().toString();
    let expected = this.lastSeqHint.get(conv);
    const deadline = performance.now() + 30_000;
    for (let attempt = 0; ; attempt++) {
      if (performance.now() > deadline) throw new MessageStoreUnavailableError(`seq allocation for ${conv} kept failing`);
      if (attempt > 1) await sleep(Math.random() * Math.min(100, 2 ** attempt));
      let applied: boolean;
      let current: number | undefined;
      try {
        const rs =
          expected === undefined
            ? await this.cql.q(Q.headInsert, [conv, n, allocId])
            : await this.cql.q(Q.headCas, [expected + n, allocId, conv, expected]);
        applied = rs.wasApplied();
        current = num(rs.first()?.get('last_seq')) ?? undefined;
      } catch (err) {
        // Outcome unknown (e.g. a CAS write timeout): a SERIAL read finishes any in-flight round
        // and tells whether ours won. If ours was applied but overtaken since, its seqs become a
        // hole that the hole filler voids.
        this.logger.warn({ err: (err as Error).message, conv, attempt }, 'seq CAS failed; checking its outcome');
        let row: Row | undefined;
        try {
          row = (await this.cql.q(Q.headAlloc, [conv], { consistency: consistencies.serial })).first();
        } catch {
          throw new MessageStoreUnavailableError(`seq allocation for ${conv} failed`, { cause: err });
        }
        if (!row) {
          expected = undefined;
          continue;
        }
        applied = str(row.get('alloc_id')) === allocId;
        current = num(row.get('last_seq')) ?? undefined;
        if (applied) expected = current! - n;
      }
      if (applied) {
        const end = (expected ?? 0) + n;
        remember(this.lastSeqHint, conv, end);
        return { start: end - n + 1, end, ts: nowMicros(), at: performance.now() };
      }
      expected = current;
    }
  }
}
