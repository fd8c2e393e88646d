/**
 * The production build: the hub, the workers and the operator scripts compiled to plain
 * JavaScript in dist/, so production (and `npm start`) runs no TypeScript loader. `npm run build`
 * (and `npm start` first, as `prestart`) runs it with the web client's build; it takes about a
 * second.
 *
 * esbuild, not tsc: it is already a runtime dependency (the web client's bundler), it builds all
 * entry points in a fraction of a second where tsc takes tens, and bundling turns each process's
 * hundreds of source modules into a few files (less for Node's module loader to resolve and
 * hold). The type check stays `npm run typecheck`, as it is today. Packages stay external
 * (node_modules is installed beside dist), and code splitting keeps a dynamic `import()` lazy:
 * what an idle hub does not use (Cassandra, BullMQ, Stripe, SMTP, Web Push) is a chunk of its
 * own, loaded only when the configuration needs it.
 *
 * Files read at run time by a path relative to their source file (the drizzle migrations, the
 * CQL migrations, web/dist, the password worker, the uWebSockets.js binary) keep working: each
 * module's `import.meta.url` is rewritten to its source file's URL, computed from the output
 * file's, so those paths resolve exactly as they do under tsx. Every output file sits two levels
 * below the repository root (dist/server/main.js, dist/chunks/…), which makes that one fixed
 * relative path.
 */
import { build, type Plugin } from 'esbuild';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildWeb } from './build-web.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const distDir = path.join(root, 'dist');

/** Entry points: output name (under dist/) → source. */
export const entries = {
  'server/main': 'server/src/main.ts',
  'server/migrate': 'server/src/cli/migrate.ts',
  'server/payments-grant': 'server/src/cli/grant.ts',
  'server/restore-epochs': 'server/src/cli/restore-epochs.ts',
  'workers/main': 'workers/src/main.ts',
};

/** Rewrites `import.meta.url` in each of our modules to that module's source URL (see above). */
const sourceUrls: Plugin = {
  name: 'source-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, (args) => {
      if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
      const text = readFileSync(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return { contents: text, loader: 'ts' };
      // From any dist/<dir>/<file>.js, '../../' is the repository root.
      const rel = '../../' + path.relative(root, args.path).split(path.sep).join('/');
      return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`), loader: 'ts' };
    });
  },
};

export async function buildServer(outDir = distDir) {
  const result = await build({
    absWorkingDir: root,
    entryPoints: entries,
    outdir: outDir,
    entryNames: '[dir]/[name]',
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    sourcemap: 'linked',
    // Stack traces name the TypeScript sources (node --enable-source-maps, which NODE_OPTIONS or the start script sets).
    sourcesContent: false,
    logLevel: 'warning',
    plugins: [sourceUrls],
    write: false,
  });
  // Each file replaced by a rename, and chunks of earlier builds kept a while: a hub started from
  // an earlier build (a test, a bench) may still import one of its chunks lazily.
  const written = new Set<string>();
  for (const f of result.outputFiles) {
    mkdirSync(path.dirname(f.path), { recursive: true });
    const tmp = `${f.path}.${process.pid}.tmp`;
    writeFileSync(tmp, f.contents);
    renameSync(tmp, f.path);
    written.add(f.path);
  }
  const chunks = path.join(outDir, 'chunks');
  for (const name of readdirSync(chunks)) {
    const p = path.join(chunks, name);
    if (!written.has(p) && Date.now() - statSync(p).mtimeMs > 86_400_000) rmSync(p, { force: true });
  }
  return outDir;
}

// `npm run build` (and `npm start` first): the server and the web client; `--server-only` for
// the workers and the operator scripts, which serve no page.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const t0 = Date.now();
  await Promise.all([buildServer(), process.argv.includes('--server-only') ? null : buildWeb()]);
  process.stderr.write(
    `built into ${path.relative(root, distDir)}${process.argv.includes('--server-only') ? '' : ' and web/dist'} in ${Date.now() - t0} ms\n`,
  );
}
