/**
 * Builds the package into client/dist: ES modules (one per source module) and one CommonJS file
 * per entry (esbuild; dependencies left as imports), and one bundled declaration
 * file per entry (dts-bundle-generator) that imports nothing but `@trpc/client` and
 * `@trpc/server` types. `npm pack` runs it first (`prepack`).
 *
 * The declarations of `AppRouter` come from src/app-router.ts, generated from the server's router
 * by gen-app-router.ts and checked current by a test; the build does not regenerate it, so
 * packing needs no server source.
 */
import { build } from 'esbuild';
import { generateDtsBundle } from 'dts-bundle-generator';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(pkgDir, 'dist');

/** Output name → source entry. */
export const entries: Record<string, string> = {
  index: 'src/index.ts',
  protocol: 'src/protocol/index.ts',
};

/** The only packages the shipped declarations may import from. */
const typeDeps = ['@trpc/client', '@trpc/server'];

export async function buildPackage() {
  rmSync(dist, { recursive: true, force: true });
  mkdirSync(dist, { recursive: true });
  const common = {
    absWorkingDir: pkgDir,
    bundle: true,
    packages: 'external',
    platform: 'neutral',
    target: 'es2022',
    logLevel: 'warning',
    // The tsconfig of the repository's root maps `@hubbub/client` to these sources; the package's own has no paths.
    tsconfig: path.join(pkgDir, 'tsconfig.json'),
  } as const;
  // ES modules: every source module is an entry of its own, so an app that imports only the socket
  // client tree-shakes the tRPC client away with its import of @trpc/client (which does not
  // declare itself free of side effects; this package does).
  const modules = readdirSync(path.join(pkgDir, 'src'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => path.join('src', f));
  await Promise.all([
    build({
      ...common,
      entryPoints: modules,
      outbase: 'src',
      outdir: dist,
      format: 'esm',
      splitting: true,
      chunkNames: 'chunks/[name]-[hash]',
    }),
    build({ ...common, entryPoints: entries, outdir: dist, format: 'cjs', outExtension: { '.js': '.cjs' } }),
  ]);
  const names = Object.keys(entries);
  const dts = generateDtsBundle(
    names.map((n) => ({
      filePath: path.join(pkgDir, entries[n]!),
      libraries: { importedLibraries: typeDeps, allowedTypesLibraries: [] },
      output: { noBanner: true, exportReferencedTypes: false },
    })),
    { preferredConfigPath: path.join(pkgDir, 'tsconfig.build.json') },
  );
  names.forEach((n, i) => {
    const text = dts[i]!;
    for (const m of text.matchAll(/(?:from|import\()\s*['"]([^'"]+)['"]/g)) {
      const spec = m[1]!;
      if (!typeDeps.some((d) => spec === d || spec.startsWith(`${d}/`)))
        throw new Error(`dist/${n}.d.ts imports ${spec}: only ${typeDeps.join(', ')} may be`);
    }
    if (/\/\/\/\s*<reference/.test(text)) throw new Error(`dist/${n}.d.ts references a types package`);
    writeFileSync(path.join(dist, `${n}.d.ts`), text);
    // The same declarations for `require`: TypeScript reads a .d.cts as CommonJS.
    writeFileSync(path.join(dist, `${n}.d.cts`), text);
  });
  return dist;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const t0 = Date.now();
  await buildPackage();
  process.stderr.write(`@hubbub/client built into client/dist in ${Date.now() - t0} ms\n`);
}
