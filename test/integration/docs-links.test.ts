import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const root = path.resolve(import.meta.dirname, '..', '..');

/** The pages a newcomer reads: the README, every page of docs/, the load tests' README. */
const docs = readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md'));
const pages = ['README.md', 'load-tests/README.md', ...docs.map((f) => `docs/${f}`)];

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');

function anchors(file: string): Set<string> {
  const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1]!)));
}

/** Relative links `[text](target)` outside code blocks; absolute URLs are not checked here. */
function links(file: string): string[] {
  const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((t) => !/^[a-z]+:/i.test(t));
}

test('every relative link in the README and docs/ names a file that exists, and a heading of it when it has an anchor', () => {
  const broken: string[] = [];
  let checked = 0;
  for (const page of pages) {
    const from = path.join(root, page);
    for (const target of links(from)) {
      checked++;
      const [file, anchor] = target.split('#') as [string, string | undefined];
      const to = file ? path.resolve(path.dirname(from), file) : from;
      if (!existsSync(to)) broken.push(`${page}: ${target} (no such file)`);
      else if (anchor && to.endsWith('.md') && !anchors(to).has(anchor)) broken.push(`${page}: ${target} (no such heading)`);
    }
  }
  assert.ok(checked > 30, `${checked} links checked`);
  assert.deepEqual(broken, []);
});

test('the README stays a page a newcomer reads: under 250 lines, with the SDK example the client test runs', () => {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const lines = readme.split('\n').length;
  assert.ok(lines < 250, `README.md has ${lines} lines`);
  assert.match(readme, /<!-- sdk-example -->\s*```ts\n/);
});
