import fc from 'fast-check';

/**
 * One seed per fuzz run: `FUZZ_SEED` replays a run (the seed is printed at the start and in any
 * failure), `FUZZ_RUNS` scales it. fast-check also prints the failing case's seed and path.
 */
export function fuzzSettings(name: string, defaultRuns: number) {
  const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
  const numRuns = process.env.FUZZ_RUNS ? Number(process.env.FUZZ_RUNS) : defaultRuns;
  console.log(`[fuzz] ${name}: FUZZ_SEED=${seed} FUZZ_RUNS=${numRuns} (set both to replay)`);
  return { seed, numRuns, endOnFailure: true, verbose: 1, includeErrorInReport: true } satisfies fc.Parameters<unknown>;
}

/** Hostile leaf values: wrong types, edge numbers, odd text, injection strings, deep and long values. */
export function hostileValue(ids: string[]): fc.Arbitrary<unknown> {
  const leaf = fc.oneof(
    fc.constantFrom(...ids),
    fc.uuid(),
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.integer(),
    fc.integer({ min: -3, max: 60 }),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.constantFrom(
      '',
      ' ',
      '\u0000',
      '\ud800',
      'a'.repeat(5000),
      "' or 1=1 --",
      '<script>alert(1)</script>',
      '__proto__',
      'constructor',
      '../../etc/passwd',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the log4j lookup string is the hostile input itself
      '${jndi:ldap://x}',
      '%00',
      '\u202e',
      'NaN',
      '-0',
      '1e309',
    ),
    fc.constantFrom(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, -1, 0, 1e308, -1e308, 2 ** 31, 0.5),
  );
  return fc.oneof(
    { weight: 6, arbitrary: leaf },
    { weight: 1, arbitrary: fc.array(leaf, { maxLength: 5 }) },
    { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), leaf, { maxKeys: 4 }) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    { weight: 1, arbitrary: fc.constant(deep(200)) },
  );
}

function deep(n: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = { a: v };
  return v;
}
