import { createRequire } from 'node:module';
import path from 'node:path';
import type * as UWS from 'uWebSockets.js';

/**
 * Loads the native uWebSockets.js binary directly. The package's own entry point silently falls
 * back to a slow pure-JS implementation when the binary does not load; a hub on
 * that fallback would pass tests and fail in production, so it refuses to start instead.
 */
function loadNative(): typeof UWS {
  const require = createRequire(import.meta.url);
  const pkgDir = path.dirname(require.resolve('uWebSockets.js/package.json'));
  const file = path.join(pkgDir, 'binaries', `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
  try {
    return require(file) as typeof UWS;
  } catch (err) {
    throw new Error(
      `uWebSockets.js native binary did not load (${file}): ${(err as Error).message}. ` +
        `Hubbub needs Node.js 20 on linux/darwin x64/arm64 (see .nvmrc); it does not run on the slow JS fallback.`,
    );
  }
}

export const uws = loadNative();
export type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, us_listen_socket } from 'uWebSockets.js';
