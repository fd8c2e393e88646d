/**
 * `npm run size`: what the SDK costs a browser app, against its budgets. Builds the package, then
 * bundles two imports of the built `dist/` for browsers with esbuild (minified, tree-shaken), and
 * gzips them: the socket client alone (≤ 5 KB) and everything the package exports, the tRPC
 * client included (≤ 15 KB). Exits 1 when a budget is passed.
 */
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { buildPackage } from './build.ts';

const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const budgets = [
  { name: 'socket client (SocketClient)', code: "export { SocketClient } from './dist/index.js';", max: 5 * 1024 },
  { name: 'whole SDK (export *)', code: "export * from './dist/index.js';", max: 15 * 1024 },
];

async function gzipped(contents: string) {
  const r = await build({
    stdin: { contents, resolveDir: pkgDir, loader: 'js' },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    metafile: true,
    logLevel: 'warning',
  });
  const bytes = r.outputFiles[0]!.contents;
  // The modules that put bytes in the bundle (the metafile's inputs also list what was tree-shaken away).
  const used = Object.values(r.metafile.outputs).flatMap((o) =>
    Object.entries(o.inputs)
      .filter(([, i]) => i.bytesInOutput > 0)
      .map(([name]) => name),
  );
  return { min: bytes.length, gz: gzipSync(bytes, { level: 9 }).length, inputs: used };
}

await buildPackage();
let failed = false;
for (const b of budgets) {
  const s = await gzipped(b.code);
  const ok = s.gz <= b.max;
  failed ||= !ok;
  const deps =
    [...new Set(s.inputs.filter((i) => i.includes('node_modules')).map((i) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(i)?.[1]))].join(
      ', ',
    ) || 'none';
  process.stdout.write(
    `${ok ? 'PASS' : 'FAIL'} ${b.name}: ${(s.gz / 1024).toFixed(2)} KB min+gzip (${(s.min / 1024).toFixed(1)} KB min), budget ${b.max / 1024} KB; dependencies bundled: ${deps}\n`,
  );
}
process.exit(failed ? 1 : 0);
