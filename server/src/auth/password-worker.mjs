// A password-hashing thread of PasswordHasher (passwords.ts). Plain JS so it loads the same
// with or without a TypeScript loader. It lowers its own CPU priority first: on Linux,
// setpriority(PRIO_PROCESS, 0) applies to the calling thread only (setpriority(2), BUGS), so
// argon2 work yields the CPU to the event loop that runs the fanout.
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { Algorithm, hashSync, verifySync } from '@node-rs/argon2';

let reniced = false;
if (workerData.nice > 0) {
  try {
    os.setPriority(0, workerData.nice);
    reniced = true;
  } catch {
    // Not permitted here: hashing still works, at normal priority.
  }
}
parentPort.postMessage({ ready: true, reniced });

parentPort.on('message', (job) => {
  try {
    const result =
      job.op === 'hash'
        ? hashSync(job.password, { algorithm: Algorithm.Argon2id, memoryCost: job.memoryCost, timeCost: job.timeCost, parallelism: 1 })
        : verifySync(job.stored, job.password);
    parentPort.postMessage({ id: job.id, result });
  } catch (err) {
    parentPort.postMessage({ id: job.id, error: err instanceof Error ? err.message : String(err) });
  }
});
