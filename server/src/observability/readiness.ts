/** One dependency a process needs to do its work (database, message store, Redis). */
export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

/**
 * Runs every check at once, each bounded by `timeoutMs`: `checks` names each one `ok` or the
 * reason it failed, `ok` is whether all passed. The hub's `/health/ready` and the workers'
 * `/health` answer from it.
 */
export async function runChecks(list: ReadinessCheck[], timeoutMs = 2000): Promise<{ ok: boolean; checks: Record<string, string> }> {
  const checks: Record<string, string> = {};
  await Promise.all(
    list.map(async (c) => {
      try {
        await withTimeout(c.check(), timeoutMs);
        checks[c.name] = 'ok';
      } catch (err) {
        checks[c.name] = (err as Error).message || 'failed';
      }
    }),
  );
  return { ok: Object.values(checks).every((v) => v === 'ok'), checks };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timeout')), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e) => (clearTimeout(t), reject(e)),
    );
  });
}
