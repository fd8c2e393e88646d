/**
 * Builds the chat client at `/` (web/) into web/dist: one minified ES module bundle, its CSS and
 * index.html, which the hub serves as static files, each beside its brotli (`.br`) and gzip
 * (`.gz`) versions so the hub never compresses per request. `npm start` runs it first (a few
 * hundred ms), so a fresh clone serves the current page and no built file is committed.
 */
import { build } from 'esbuild';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

/** Compressed beside the file when it is text; the source map (read by developer tools only) gets gzip alone, which is quick. */
function compressed(file: string, bytes: Uint8Array): [string, Uint8Array][] {
  if (!/\.(js|css|html|map)$/.test(file)) return [];
  const out: [string, Uint8Array][] = [[`${file}.gz`, gzipSync(bytes, { level: 9 })]];
  if (!file.endsWith('.map')) {
    out.push([
      `${file}.br`,
      brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length } }),
    ]);
  }
  return out;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const webDist = path.join(root, 'web', 'dist');

export async function buildWeb(outDir = webDist) {
  mkdirSync(path.join(outDir, 'assets'), { recursive: true });
  const result = await build({
    entryPoints: [path.join(root, 'web', 'src', 'main.ts')],
    outfile: path.join(outDir, 'assets', 'app.js'),
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    sourcemap: 'linked',
    logLevel: 'warning',
    write: false,
  });
  const files: [string, Uint8Array][] = result.outputFiles.map((f) => [f.path, f.contents]);
  files.push([path.join(outDir, 'index.html'), readFileSync(path.join(root, 'web', 'index.html'))]);
  files.push([path.join(outDir, 'assets', 'styles.css'), readFileSync(path.join(root, 'web', 'styles.css'))]);
  // The service worker (Web Push), plain JS: it runs in a worker, not the page, so it is not bundled with it.
  files.push([path.join(outDir, 'assets', 'sw.js'), readFileSync(path.join(root, 'web', 'sw.js'))]);
  files.push(...files.flatMap(([file, bytes]) => compressed(file, bytes)));
  // Each file replaced by a rename: a hub starting (or two builds running) meanwhile never reads half a file.
  for (const [file, bytes] of files) {
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, bytes);
    renameSync(tmp, file);
  }
  return outDir;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const t0 = Date.now();
  await buildWeb();
  process.stderr.write(`web client built into ${path.relative(root, webDist)} in ${Date.now() - t0} ms\n`);
}
