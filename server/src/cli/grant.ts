import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.ts';
import { DataDirLockedError } from '../db/data-dir-lock.ts';
import { openDatabase } from '../db/database.ts';
import { DomainError } from '../errors.ts';
import { createLogger } from '../observability/logger.ts';
import { openPayments } from '../payments/open-payments.ts';

/**
 * `npm run payments:grant -- --user <username> --amount <minor units> [--key <idempotency key>]`:
 * credits a wallet from the grants account through the ledger, with an audit entry naming the
 * operator. How a development or demo setup gets money without Stripe.
 *
 * On the embedded database (no DATABASE_URL) the hub holds DATA_DIR while it runs, and the grant
 * is refused with the holder named: stop the hub, grant, start it again. Routing the grant
 * through the running hub would need an operator-only channel into it (a local socket, its own
 * auth) for one demo command; on PostgreSQL, where production runs, the grant works beside
 * running hubs as it is.
 */
const usage = 'usage: npm run payments:grant -- --user <username> --amount <minor units> [--key <idempotency key>]';
let args: { user?: string; amount?: string; key?: string };
try {
  args = parseArgs({ options: { user: { type: 'string' }, amount: { type: 'string' }, key: { type: 'string' } }, strict: true }).values;
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n${usage}\n`);
  process.exit(2);
}
const amount = Number(args.amount);
if (!args.user || !/^[0-9]+$/.test(args.amount ?? '') || !Number.isSafeInteger(amount) || amount < 1 || amount > 1_000_000_000_000) {
  process.stderr.write(`--user and a whole positive --amount (minor units, at most 10^12) are required\n${usage}\n`);
  process.exit(2);
}
const config = loadConfig();
const logger = createLogger({ level: 'warn', replicaId: `grant-${process.pid}`, name: 'grant' });
const database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR, poolMax: 2 }).catch((err) => {
  if (!(err instanceof DataDirLockedError)) throw err;
  process.stderr.write(
    `nothing granted: ${err.message}\nA grant on the embedded database needs the hub stopped: stop it, run the grant, start it again.\n`,
  );
  process.exit(75);
});
let code = 0;
try {
  await database.migrate();
  const { payments } = openPayments(config, {
    db: database.db,
    database,
    logger,
    // Limits do not change with a grant; no hub needs telling, no event is written.
    controlUser: async () => {},
    writeEvent: () => Promise.reject(new Error('a grant writes no conversation event')),
  });
  const r = await payments.grant({ username: args.user, amount, actor: `cli:${userInfo().username}`, key: args.key });
  process.stdout.write(
    `${r.replayed ? 'already granted' : 'granted'} ${amount} ${r.currency} to ${args.user}: balance ${r.balance}, debt ${r.debt} (transfer ${r.transferId})\n`,
  );
} catch (err) {
  process.stderr.write(`${err instanceof DomainError ? err.message : (err as Error).stack}\n`);
  code = 1;
} finally {
  await database.close();
}
process.exit(code);
