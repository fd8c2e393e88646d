import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { generateAppRouter, outFile, repoRoot } from '../scripts/gen-app-router.ts';

test('client/src/app-router.ts is what the server router generates now (run `npm run generate -w @hubbub/client` when this fails)', () => {
  const committed = readFileSync(outFile, 'utf8');
  const fresh = generateAppRouter();
  assert.equal(committed, fresh, `${path.relative(repoRoot, outFile)} is stale`);
});

test('the shipped AppRouter type imports nothing but @trpc/server types', () => {
  const text = readFileSync(outFile, 'utf8');
  const specs = [...text.matchAll(/(?:from|import\()\s*['"]([^'"]+)['"]/g)].map((m) => m[1]);
  assert.deepEqual(specs, ['@trpc/server']);
  assert.doesNotMatch(text, /\bctx: (?!object;)/, 'the context type (services, database) is not shipped');
});
