import type { Logger } from '../../observability/logger.ts';
import type { AppendBatch, AppendResult, EventDraft, StoredEvent } from '../message-store.ts';
import { type CidClaims, claimKey } from './cid-claims.ts';
import { keyOf, nowMicros, sleep } from './cql.ts';
import { MessageStoreUnavailableError } from './errors.ts';
import type { EventLog, Publication } from './event-log.ts';
import type { Lease, Leases, Tail } from './leases.ts';

/** One conversation's part of an append call, from its lease to its results. */
interface Job {
  conv: string;
  drafts: EventDraft[];
  results: (AppendResult | undefined)[];
  /** Later copies of a cid inside the batch → the first one. */
  copyOf: Map<number, number>;
  /** Drafts whose cid an append of this instance has in flight: their outcome. */
  waits: [number, Promise<StoredEvent | null>][];
  lease?: Lease;
  w?: Write;
  error?: unknown;
}

/** The seqs a job took and what it must settle. */
interface Write {
  fresh: number[];
  events: StoredEvent[];
  seqs: number[];
  before: Promise<Tail>;
  finish: (t: Tail) => void;
  settle: (events: StoredEvent[] | null) => void;
  written: boolean;
  /** What the job leaves for the appends after it in the lease (see Tail); null until known. */
  tail: Tail;
}

/**
 * Appends with group commit across conversations: each conversation of a call takes its lease,
 * looks its cids up and takes its seqs on its own; then the events of all of them go out as
 * one unlogged batch (chunked), and their durable_seq raises as another. A conversation whose
 * part fails (bad data, a lost lease) fails alone: a failed shared batch is retried per
 * conversation.
 */
export class Appender {
  constructor(
    private readonly leases: Leases,
    private readonly log: EventLog,
    private readonly claims: CidClaims,
    private readonly logger: Logger,
    /** Writes events with their indexes (the store's, so that tests can make it fail). */
    private readonly writeEvents: (events: StoredEvent[], ts: number) => Promise<void>,
  ) {}

  async appendMany(batches: AppendBatch[]): Promise<PromiseSettledResult<AppendResult[]>[]> {
    // A conversation twice in one call: the later part waits for the earlier one's publish,
    // so it goes in a call of its own after this one.
    const seen = new Set<string>();
    const now: number[] = [];
    const later: number[] = [];
    batches.forEach((b, i) => (seen.has(b.conv) ? later : (seen.add(b.conv), now)).push(i));
    const out = new Array<PromiseSettledResult<AppendResult[]>>(batches.length);
    // Conversations whose lease is here go out together. One that needs its lease first goes
    // alone: waiting for a hand-over while holding leases for the shared batch could deadlock
    // with another instance doing the same the other way round.
    const ready = now.filter((i) => this.leases.ready(batches[i]!.conv));
    const alone = now.filter((i) => !this.leases.ready(batches[i]!.conv));
    await Promise.all([
      this.run(ready.map((i) => batches[i]!)).then((rs) => ready.forEach((i, k) => (out[i] = rs[k]!))),
      ...alone.map((i) => this.run([batches[i]!]).then(([r]) => (out[i] = r!))),
    ]);
    if (later.length) {
      const rest = await this.appendMany(later.map((i) => batches[i]!));
      later.forEach((i, k) => (out[i] = rest[k]!));
    }
    return out;
  }

  private async run(batches: AppendBatch[]): Promise<PromiseSettledResult<AppendResult[]>[]> {
    if (!batches.length) return [];
    const jobs = batches.map((b) => this.job(b.conv, b.drafts));
    try {
      await Promise.all(jobs.map((j) => this.prepare(j).catch((err) => (j.error = err))));
      const writing = jobs.filter((j) => j.w && !j.error);
      await this.writeAll(writing).catch((err) => this.logger.error({ err: (err as Error).message }, 'cassandra event write failed'));
      await this.publishAll(writing);
    } finally {
      for (const j of jobs) if (j.lease) this.leases.done(j.lease);
    }
    return Promise.allSettled(jobs.map((j) => this.conclude(j)));
  }

  private job(conv: string, drafts: EventDraft[]): Job {
    const copyOf = new Map<number, number>();
    const firstOf = new Map<string, number>();
    drafts.forEach((d, i) => {
      const k = keyOf(d);
      if (k == null) return;
      const first = firstOf.get(k);
      if (first === undefined) firstOf.set(k, i);
      else copyOf.set(i, first);
    });
    return { conv, drafts, results: new Array(drafts.length), copyOf, waits: [] };
  }

  /** The lease, the cid lookup and the seqs of one conversation. */
  private async prepare(j: Job) {
    if (!j.drafts.length) return;
    const lease = await this.leases.use(j.conv);
    j.lease = lease;
    const todo = j.drafts.map((_, i) => i).filter((i) => !j.copyOf.has(i));
    // The lookup and the registration of an append's cids happen one append at a time per
    // lease, so an append either sees another's cid in flight here or, once that one is
    // published, its claim row (written before it published).
    const gate = lease.gate;
    let open!: () => void;
    lease.gate = new Promise<void>((r) => (open = r));
    const mine = new Map<string, (e: StoredEvent | null) => void>();
    const fresh: number[] = [];
    try {
      await gate;
      // A cid in flight now is that append's, whenever it finishes (it may finish during the lookup).
      const busy = new Map<number, Promise<StoredEvent | null>>();
      const keyed: number[] = [];
      for (const i of todo) {
        const d = j.drafts[i]!;
        if (keyOf(d) == null) continue;
        const p = lease.inflight.get(claimKey(d.from, d.cid));
        if (p) busy.set(i, p);
        else keyed.push(i);
      }
      const stored = await this.claims.lookup(
        j.conv,
        keyed.map((i) => j.drafts[i]!),
        lease.published,
      );
      for (const i of todo) {
        const d = j.drafts[i]!;
        const found = stored.get(d);
        const held = busy.get(i);
        if (found) j.results[i] = { event: found, duplicate: true };
        else if (held) j.waits.push([i, held]);
        else {
          if (keyOf(d) != null) {
            const k = claimKey(d.from, d.cid);
            lease.inflight.set(k, new Promise((r) => mine.set(k, r)));
          }
          fresh.push(i);
        }
      }
    } finally {
      open();
    }
    const settle = (events: StoredEvent[] | null) => {
      for (const [k, r] of mine) {
        lease.inflight.delete(k);
        r(events?.find((e) => claimKey(e.from, e.cid) === k) ?? null);
      }
      mine.clear();
    };
    if (!fresh.length) return;
    let start: number;
    try {
      start = await this.leases.take(lease, fresh.length);
    } catch (err) {
      settle(null);
      throw err;
    }
    // Seqs are handed out in the order of the tail: each append publishes after the one before.
    const before = lease.tail;
    let finish!: (t: Tail) => void;
    lease.tail = new Promise<Tail>((r) => (finish = r));
    const events = fresh.map((i, k): StoredEvent => ({ ...j.drafts[i]!, conv: j.conv, seq: start + k }));
    j.w = { fresh, events, seqs: events.map((e) => e.seq), before, finish, settle, written: false, tail: null };
  }

  /** All jobs' events in shared batches; a job whose share failed is retried alone. */
  private async writeAll(jobs: Job[]) {
    if (!jobs.length) return;
    const ts = nowMicros();
    if (this.leases.alive()) {
      try {
        await this.writeEvents(
          jobs.flatMap((j) => j.w!.events),
          ts,
        );
        for (const j of jobs) j.w!.written = true;
        return;
      } catch (err) {
        if (jobs.length === 1)
          this.logger.warn({ err: (err as Error).message, conv: jobs[0]!.conv, attempt: 0 }, 'cassandra event write failed');
        else
          this.logger.warn({ err: (err as Error).message, convs: jobs.length }, 'cassandra event write failed; retrying per conversation');
      }
    }
    await Promise.all(jobs.map(async (j) => (j.w!.written = await this.retryAlone(j, ts))));
  }

  private async retryAlone(j: Job, ts: number): Promise<boolean> {
    for (let attempt = 1; attempt < 3; attempt++) {
      await sleep(50 * 4 ** (attempt - 1) * (0.5 + Math.random()));
      if (!this.leases.alive()) return false;
      try {
        await this.writeEvents(j.w!.events, ts);
        return true;
      } catch (err) {
        this.logger.warn({ err: (err as Error).message, conv: j.conv, attempt }, 'cassandra event write failed');
      }
    }
    return false;
  }

  private async publishAll(jobs: Job[]) {
    try {
      const ready = await Promise.all(
        jobs.map((j) =>
          this.settleBefore(j).then(
            () => true,
            (err) => ((j.error = err), false),
          ),
        ),
      );
      const pubs = jobs.filter((_, i) => ready[i]);
      const publications = pubs.map(
        (j): Publication => ({
          conv: j.conv,
          epoch: j.lease!.epoch,
          end: j.w!.seqs.at(-1)!,
          lastMessage: j.w!.written ? j.w!.events.findLast((e) => e.kind === 'message')?.seq : undefined,
        }),
      );
      const failed = await this.log.publishMany(publications);
      pubs.forEach((j, k) => {
        const w = j.w!;
        if (failed[k]) j.error = failed[k];
        else j.lease!.published = Math.max(j.lease!.published, w.seqs.at(-1)!);
        if (!w.written) j.error ??= new MessageStoreUnavailableError(`could not write events of ${j.conv}`);
        if (!j.error) {
          w.settle(w.events);
          w.fresh.forEach((i, k2) => (j.results[i] = { event: w.events[k2]!, duplicate: false }));
        }
      });
    } finally {
      for (const j of jobs) {
        const w = j.w!;
        if (j.error && (w.written || w.tail === null)) {
          // Events written but not published: a later publish of this lease would show them
          // while a retry of their cids would not find them yet. The lease is taken over
          // instead, which publishes them and their claims, so a retry gets them as duplicates.
          w.tail = null;
          this.leases.lose(j.lease!, 'an append wrote events it could not publish');
        }
        w.settle(null);
        w.finish(w.tail);
      }
    }
  }

  /**
   * Makes every seq up to the job's last one settled (written or voided), or throws: voids the
   * job's seqs when its write failed, waits for the appends before it in the lease, voids what
   * they could not. Sets the job's tail accordingly.
   */
  private async settleBefore(j: Job) {
    const w = j.w!;
    if (!w.written) {
      try {
        await this.log.writeVoids(j.conv, w.seqs);
        this.logger.warn({ conv: j.conv, from: w.seqs[0], to: w.seqs.at(-1) }, 'append failed; its seqs were filled with void events');
      } catch (err) {
        this.logger.error({ err: (err as Error).message, conv: j.conv, from: w.seqs[0] }, 'append failed and its seqs could not be voided');
        const prior = await w.before;
        w.tail = prior && [...prior, ...w.seqs]; // the next append tries again
        throw new MessageStoreUnavailableError(`could not write events of ${j.conv}`, { cause: err });
      }
    }
    const prior = await w.before;
    if (prior === null) throw new MessageStoreUnavailableError(`an earlier append to ${j.conv} left its seqs unsettled; retry`);
    if (prior.length) {
      try {
        await this.log.writeVoids(j.conv, prior); // an earlier append could not void its own
      } catch (err) {
        w.tail = prior;
        throw new MessageStoreUnavailableError(`could not void the seqs of a failed append to ${j.conv}`, { cause: err });
      }
    }
    if (j.lease!.lost) throw new MessageStoreUnavailableError(`the lease of ${j.conv} was dropped mid-append; retry`);
    if (!this.leases.alive()) {
      // Too late: the lease may be taken over by now, and these seqs reused.
      this.leases.lose(j.lease!, 'append outlived its liveness');
      throw new MessageStoreUnavailableError(`append to ${j.conv} took too long; retry`);
    }
    w.tail = []; // everything up to here is written; a failed publish is covered by the next one
  }

  /** The job's results once the appends holding its other cids are done. */
  private async conclude(j: Job): Promise<AppendResult[]> {
    if (j.error) throw j.error;
    // Those appends are this instance's: their outcome comes soon. One that failed leaves the
    // cid free, so the draft is appended anew (after this append's events).
    const again: number[] = [];
    for (const [i, p] of j.waits) {
      const event = await p;
      if (event) j.results[i] = { event, duplicate: true };
      else again.push(i);
    }
    if (again.length) {
      const [retried] = await this.appendMany([{ conv: j.conv, drafts: again.map((i) => j.drafts[i]!) }]);
      if (retried!.status === 'rejected') throw retried!.reason;
      again.forEach((i, k) => (j.results[i] = retried!.value[k]!));
    }
    for (const [i, first] of j.copyOf) j.results[i] = { event: j.results[first]!.event, duplicate: true };
    return j.results as AppendResult[];
  }
}
