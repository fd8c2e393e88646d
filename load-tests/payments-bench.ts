/**
 * `npm run bench:payments`: what the ledger costs. On a durable PostgreSQL (fsync on), one hub
 * replica in this process; 50 payers each tip their partner in a direct conversation, one tip
 * after another, while the same number of plain messages are appended by 50 senders in the same
 * conversations, through the same group-committing writer. A tip is a ledger transaction
 * (claim the key, lock three accounts, two postings, two balances) plus its `system` event; a
 * message is the event alone. Both are called on the domain services, without HTTP or sockets,
 * so the ratio is the ledger's cost. Prints tips/s, messages/s, p50/p99 of each, and the ratios.
 *
 *   npm run bench:payments                 # 50 payers × 60 tips, 50 senders × 60 messages
 *   npm run bench:payments -- --per 100    # more per payer
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { conversations, members, profiles, users } from '../db/schema/index.ts';
import { testConfig } from '../server/src/config.ts';
import { startReplica } from '../server/src/replica.ts';
import { assertLedgerConsistent } from '../test/helpers/payments.ts';
import { createDatabase, startPostgres } from '../test/helpers/postgres.ts';

const { values } = parseArgs({ options: { payers: { type: 'string', default: '50' }, per: { type: 'string', default: '60' } } });
const PAYERS = Number(values.payers);
const PER = Number(values.per);

const pg = await startPostgres({ durable: true });
// The port opens before the server accepts sessions (57P03, "starting up"): ask again until it does.
let url = '';
for (let tries = 0; !url; tries++) {
  try {
    url = await createDatabase(pg.url);
  } catch (err) {
    if ((err as { code?: string }).code !== '57P03' || tries > 100) throw err;
    await new Promise((r) => setTimeout(r, 100));
  }
}
const replica = await startReplica(testConfig({ DATABASE_URL: url, JWT_SECRET: 'x'.repeat(32), DATABASE_POOL_MAX: '20' }));
try {
  const db = replica.database.db;
  const pairs = Array.from({ length: PAYERS }, (_, i) => ({ payer: randomUUID(), payee: randomUUID(), conv: randomUUID(), name: `bench_payer_${i}_${process.pid}` }));
  for (const p of pairs) {
    await db.insert(users).values([
      { id: p.payer, email: `${p.payer}@bench.test`, username: p.name },
      { id: p.payee, email: `${p.payee}@bench.test`, username: `${p.name}_to` },
    ]);
    await db.insert(profiles).values([
      { userId: p.payer, displayName: 'payer' },
      { userId: p.payee, displayName: 'payee' },
    ]);
    await db.insert(conversations).values({ id: p.conv, kind: 'direct', directKey: [p.payer, p.payee].sort().join(':'), createdBy: p.payer });
    await db.insert(members).values([
      { conversationId: p.conv, userId: p.payer },
      { conversationId: p.conv, userId: p.payee },
    ]);
    await replica.services.payments.grant({ username: p.name, amount: PER * 10, actor: 'bench' });
  }

  const pct = (xs: number[], q: number) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  };
  async function run(name: string, op: (p: (typeof pairs)[number], i: number) => Promise<unknown>) {
    const lat: number[] = [];
    const t0 = performance.now();
    await Promise.all(
      pairs.map(async (p) => {
        for (let i = 0; i < PER; i++) {
          const s = performance.now();
          await op(p, i);
          lat.push(performance.now() - s);
        }
      }),
    );
    const secs = (performance.now() - t0) / 1000;
    const r = { name, n: lat.length, perS: lat.length / secs, p50: pct(lat, 0.5), p99: pct(lat, 0.99) };
    process.stdout.write(`${name.padEnd(9)} ${r.n} in ${secs.toFixed(2)} s: ${r.perS.toFixed(0)}/s, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms\n`);
    return r;
  }
  // A short warm-up of both paths (prepared statements, connection pool, JIT).
  await Promise.all(pairs.slice(0, 10).map((p) => replica.services.payments.tip(p.payer, { conversationId: p.conv, toUserId: p.payee, amount: 1, idempotencyKey: `warm-${p.payer}` })));
  const message = (p: (typeof pairs)[number], i: number) =>
    replica.hub.writer.write(p.conv, { id: randomUUID(), kind: 'message', from: p.payer, ts: Date.now(), cid: `m${i}`, data: { body: `hello ${i}` } });
  const tip = (p: (typeof pairs)[number], i: number) =>
    replica.services.payments.tip(p.payer, { conversationId: p.conv, toUserId: p.payee, amount: 1 + (i % 9), idempotencyKey: `t${i}` });
  process.stdout.write(`payments bench: ${PAYERS} concurrent payers and senders, ${PER} each, durable PostgreSQL (fsync on)\n`);
  const m = await run('messages', message);
  const t = await run('tips', tip);
  process.stdout.write(`ledger cost: tips/s = ${(t.perS / m.perS).toFixed(2)}× messages/s; tip p99 = ${(t.p99 / m.p99).toFixed(2)}× message p99\n`);
  await assertLedgerConsistent(replica.database);
  process.stdout.write('ledger consistent after the run (postings sum to zero, balances equal postings)\n');
} finally {
  await replica.stop();
  await pg.stop();
}
process.exit(0);
