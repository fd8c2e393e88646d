/**
 * Builds the chat client at `/` (web/) into web/dist: one minified ES module bundle, its CSS and
 * index.html, which the hub serves as static files. `npm start` runs it first (about 100 ms with
 * esbuild), so a fresh clone serves the current page and no built file is committed.
 */
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const webDist = path.join(root, 'web', 'dist');

export async function buildWeb(outDir = webDist) {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(path.join(outDir, 'assets'), { recursive: true });
  await build({
    entryPoints: [path.join(root, 'web', 'src', 'main.ts')],
    outfile: path.join(outDir, 'assets', 'app.js'),
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    sourcemap: 'linked',
    logLevel: 'warning',
  });
  copyFileSync(path.join(root, 'web', 'index.html'), path.join(outDir, 'index.html'));
  copyFileSync(path.join(root, 'web', 'styles.css'), path.join(outDir, 'assets', 'styles.css'));
  return outDir;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const t0 = Date.now();
  await buildWeb();
  process.stderr.write(`web client built into ${path.relative(root, webDist)} in ${Date.now() - t0} ms\n`);
}
