import { type Config, ConfigError, loadConfig } from './config.ts';
import { DataDirLockedError } from './db/data-dir-lock.ts';
import { startupLine } from './http/page-url.ts';
import { startReplica } from './replica.ts';

/** Entry point of a hub replica: config from the environment, signals wired to drain. */
async function main() {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`hubbub: ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const replica = await startReplica(config);
  // Someone at a terminal (npm start) gets the address to open in words; logs to a file or a collector stay JSON.
  if (process.stdout.isTTY) process.stdout.write(startupLine(config.HOST, replica.port, config.ALLOWED_ORIGINS));
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    replica.logger.info({ signal }, 'draining');
    replica
      .drain()
      .then(() => {
        replica.logger.info('drained, exiting');
        process.exit(0);
      })
      .catch((err) => {
        replica.logger.error({ err }, 'drain failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err) => {
  if (err instanceof DataDirLockedError) {
    process.stderr.write(`hubbub: not started: ${err.message}\n`);
    process.exit(75); // EX_TEMPFAIL: it can start once the holder has stopped
  }
  process.stderr.write(`hubbub: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
