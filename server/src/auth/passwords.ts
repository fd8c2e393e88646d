import os from 'node:os';
import { Worker } from 'node:worker_threads';

interface Job {
  id: number;
  op: 'hash' | 'verify';
  password: string;
  stored?: string;
  memoryCost: number;
  timeCost: number;
}

export interface PasswordHasherOptions {
  memoryCost: number;
  timeCost: number;
  /** Nice value of the hashing threads (0 = same priority as the event loop). */
  nice?: number;
  /** Hashing threads; default min(2, cores). */
  threads?: number;
}

/**
 * Argon2id (OWASP's minimum by default: m=19456 KiB, t=2, p=1) on a few dedicated worker
 * threads at a lower CPU priority than the event loop, never on the event loop: a burst of
 * logins then slows logins, not message delivery.
 */
export class PasswordHasher {
  private readonly workers: { worker: Worker; busy: boolean }[] = [];
  private readonly queue: { job: Job; resolve: (v: unknown) => void; reject: (e: Error) => void }[] = [];
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; slot: number }>();
  private nextId = 1;
  private dummy: Promise<string>;
  private closed = false;
  private readonly maxThreads: number;

  constructor(private readonly params: PasswordHasherOptions) {
    this.maxThreads = params.threads ?? Math.max(1, Math.min(2, os.availableParallelism()));
    // Verified against when the user does not exist, so unknown users take the same time.
    this.dummy = this.hash('not-a-real-password-' + Math.random());
    // verify() awaits it for unknown users and reports a failure there; this keeps it from being an unhandled rejection meanwhile.
    this.dummy.catch(() => {});
  }

  hash(password: string): Promise<string> {
    return this.run({ op: 'hash', password }) as Promise<string>;
  }

  async verify(stored: string | null | undefined, password: string): Promise<boolean> {
    const target = stored ?? (await this.dummy);
    try {
      const ok = (await this.run({ op: 'verify', password, stored: target })) as boolean;
      return ok && stored != null;
    } catch {
      return false;
    }
  }

  async close() {
    this.closed = true;
    for (const q of this.queue.splice(0)) q.reject(new Error('password hasher closed'));
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }

  private run(job: Omit<Job, 'id' | 'memoryCost' | 'timeCost'>): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('password hasher closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({
        job: { ...job, id: this.nextId++, memoryCost: this.params.memoryCost, timeCost: this.params.timeCost },
        resolve,
        reject,
      });
      this.pump();
    });
  }

  private pump() {
    while (this.queue.length) {
      let slot = this.workers.findIndex((w) => !w.busy);
      if (slot < 0) {
        if (this.workers.length >= this.maxThreads) return;
        slot = this.spawn();
      }
      const w = this.workers[slot]!;
      const { job, resolve, reject } = this.queue.shift()!;
      w.busy = true;
      this.waiting.set(job.id, { resolve, reject, slot });
      w.worker.postMessage(job);
    }
  }

  /**
   * A hashing thread, started when a hash finds every thread busy (up to maxThreads): each is a
   * V8 isolate plus argon2's 19 MiB, 15 to 20 MiB resident, so a hub whose logins come one at
   * a time runs one. The first starts at once, for the dummy hash.
   */
  private spawn(): number {
    const slot = this.workers.length;
    const worker = new Worker(new URL('./password-worker.mjs', import.meta.url), { workerData: { nice: this.params.nice ?? 0 } });
    worker.unref();
    worker.on('message', (m: { id?: number; result?: unknown; error?: string }) => {
      if (m.id === undefined) return;
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      this.workers[w.slot]!.busy = false;
      if (m.error !== undefined) w.reject(new Error(m.error));
      else w.resolve(m.result);
      this.pump();
    });
    worker.on('error', (err) => {
      // A crashed hashing thread fails its job; the others keep serving.
      for (const [id, w] of this.waiting) {
        if (w.slot === slot) {
          this.waiting.delete(id);
          w.reject(err);
        }
      }
    });
    this.workers.push({ worker, busy: false });
    return slot;
  }
}
