import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type * as UWS from 'uWebSockets.js';

/**
 * Loads the native uWebSockets.js binary directly. The package's own entry point silently falls
 * back to a slow pure-JS implementation when the binary does not load; a hub on
 * that fallback would pass tests and fail in production, so it refuses to start instead.
 */
function loadNative(): typeof UWS {
  const require = createRequire(import.meta.url);
  // The package's directory found the way require looks (some builds export no package.json).
  const pkgDir =
    require.resolve
      .paths('uWebSockets.js')
      ?.map((d) => path.join(d, 'uWebSockets.js'))
      .find((d) => existsSync(d)) ?? path.dirname(require.resolve('uWebSockets.js/package.json'));
  const name = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  // The npm mirror in package.json keeps its binaries in binaries/; the newer build the Node 22+
  // image installs in its place (Dockerfile, UWS) keeps them at the package root.
  const file =
    [path.join(pkgDir, 'binaries', name), path.join(pkgDir, name)].find((f) => existsSync(f)) ?? path.join(pkgDir, 'binaries', name);
  try {
    return require(file) as typeof UWS;
  } catch (err) {
    throw new Error(
      `uWebSockets.js native binary did not load (${file}): ${(err as Error).message}. ` +
        `Hubbub needs Node.js 20 on linux/darwin x64/arm64 (see .nvmrc), or the image built for Node 22 or 24 (docs/operations.md); ` +
        `it does not run on the slow JS fallback.`,
    );
  }
}

export const uws = loadNative();
export type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, us_listen_socket } from 'uWebSockets.js';
