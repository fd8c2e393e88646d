import { test } from 'node:test';

/**
 * The contract suites' test wrapper: each test gets a fresh fixture from the backend factory,
 * cleaned up whether the body passes or throws.
 */
export function fixtureTest<F extends { cleanup(): Promise<void> }>(make: () => Promise<F>) {
  return (title: string, body: (f: F) => Promise<void>) =>
    test(title, async () => {
      const f = await make();
      try {
        await body(f);
      } finally {
        await f.cleanup();
      }
    });
}
