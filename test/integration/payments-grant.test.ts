import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { eq } from 'drizzle-orm';
import { openDatabase, type Database } from '../../server/src/db/database.ts';
import { paymentAudit, paymentAccounts, users } from '../../db/schema/index.ts';
import { services } from '../helpers/env.ts';
import { createDatabase } from '../helpers/postgres.ts';
import { assertLedgerConsistent } from '../helpers/payments.ts';

const root = path.resolve(import.meta.dirname, '../..');
function grant(env: Record<string, string>, args: string[]) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'server/src/cli/grant.ts', ...args],
      { cwd: root, env: { PATH: process.env.PATH!, ...env } },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('npm run payments:grant', () => {
  let database: Database;
  let url: string;
  before(async () => {
    url = await createDatabase(services.databaseUrl());
    database = await openDatabase({ databaseUrl: url, dataDir: 'unused' });
    await database.migrate();
  });
  after(async () => database?.close());

  test('7 credits a wallet from the grants account, audited, once per key; bad arguments change nothing', async () => {
    const id = randomUUID();
    const username = `g_${id.slice(0, 8)}`;
    await database.db.insert(users).values({ id, email: `${id}@x.test`, username });
    const env = { DATABASE_URL: url, NODE_ENV: 'test' };
    for (const bad of [
      ['--user', username, '--amount', '1.5'],
      ['--user', username, '--amount', '-3'],
      ['--user', username],
      ['--amount', '10'],
      ['--user', username, '--amount', '10', '--what'],
    ]) {
      const r = await grant(env, bad);
      assert.equal(r.code, 2, `${bad.join(' ')}: ${r.stderr}`);
    }
    assert.equal((await grant(env, ['--user', 'nobody_here', '--amount', '10'])).code, 1);
    assert.equal((await database.db.select().from(paymentAccounts).where(eq(paymentAccounts.userId, id))).length, 0);
    const ok = await grant(env, ['--user', username, '--amount', '2500', '--key', 'demo-1']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /granted 2500 usd .* balance 2500/);
    const again = await grant(env, ['--user', username, '--amount', '2500', '--key', 'demo-1']);
    assert.match(again.stdout, /already granted .* balance 2500/);
    const audit = await database.db.select().from(paymentAudit).where(eq(paymentAudit.userId, id));
    assert.deepEqual(
      audit.map((a) => a.event),
      ['grant'],
    );
    assert.match(audit[0]!.actor, /^cli:/);
    await assertLedgerConsistent(database);
  });
});
