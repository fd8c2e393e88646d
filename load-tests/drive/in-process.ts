/** The scenarios that run inside the bench process: the ledger's cost on the domain services, and frame validation. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { conversations, members, profiles, users } from '../../db/schema/index.ts';
import { testConfig } from '../../server/src/config.ts';
import { parseClientFrame } from '../../server/src/protocol/fast-frames.ts';
import { clientFrame } from '../../server/src/protocol/frames.ts';
import { startReplica } from '../../server/src/replica.ts';
import { assertLedgerConsistent } from '../../test/helpers/payments.ts';
import { createDatabase } from '../../test/helpers/postgres.ts';
import { round } from '../harness/procs.ts';
import type { Ctx } from '../harness/context.ts';

const pct = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

/**
 * What a tip costs next to a message, on durable PostgreSQL: `payers` payers each tip their partner in a direct
 * conversation, one tip after another, while as many plain messages are appended by as many senders in the same
 * conversations through the same group-committing writer. A tip is a ledger transaction (claim the key, lock three
 * accounts, two postings, two balances) plus its event; a message the event alone. Both on the domain services, without
 * HTTP or sockets, so the ratio is the ledger's cost. The ledger must be consistent afterwards.
 */
export async function payments(ctx: Ctx) {
  const { paymentsPayers: payers, paymentsPer: per } = ctx.sizes;
  const replica = await startReplica(
    testConfig({ DATABASE_URL: await createDatabase(ctx.pg.url), JWT_SECRET: 'x'.repeat(32), DATABASE_POOL_MAX: '20' }),
  );
  ctx.cleanup(() => replica.stop());
  const db = replica.database.db;
  const pairs = Array.from({ length: payers }, (_, i) => ({
    payer: randomUUID(),
    payee: randomUUID(),
    conv: randomUUID(),
    name: `bench_payer_${i}_${process.pid}`,
  }));
  for (const p of pairs) {
    await db.insert(users).values([
      { id: p.payer, email: `${p.payer}@bench.test`, username: p.name },
      { id: p.payee, email: `${p.payee}@bench.test`, username: `${p.name}_to` },
    ]);
    await db.insert(profiles).values([
      { userId: p.payer, displayName: 'payer' },
      { userId: p.payee, displayName: 'payee' },
    ]);
    await db
      .insert(conversations)
      .values({ id: p.conv, kind: 'direct', directKey: [p.payer, p.payee].sort().join(':'), createdBy: p.payer });
    await db.insert(members).values([
      { conversationId: p.conv, userId: p.payer },
      { conversationId: p.conv, userId: p.payee },
    ]);
    await replica.services.payments.grant({ username: p.name, amount: per * 10, actor: 'bench' });
  }
  const run = async (op: (p: (typeof pairs)[number], i: number) => Promise<unknown>) => {
    const lat: number[] = [];
    const t0 = performance.now();
    await Promise.all(
      pairs.map(async (p) => {
        for (let i = 0; i < per; i++) {
          const s = performance.now();
          await op(p, i);
          lat.push(performance.now() - s);
        }
      }),
    );
    return { perS: lat.length / ((performance.now() - t0) / 1000), p50: pct(lat, 0.5), p99: pct(lat, 0.99) };
  };
  const tip = (p: (typeof pairs)[number], i: number, key = `t${i}`) =>
    replica.services.payments.tip(p.payer, { conversationId: p.conv, toUserId: p.payee, amount: 1 + (i % 9), idempotencyKey: key });
  // A short warm-up of both paths (prepared statements, connection pool, JIT).
  await Promise.all(pairs.slice(0, 10).map((p) => tip(p, 0, `warm-${p.payer}`)));
  ctx.log(`payments: ${payers} concurrent payers and senders, ${per} each, durable PostgreSQL …`);
  const m = await run((p, i) =>
    replica.hub.writer.write(p.conv, {
      id: randomUUID(),
      kind: 'message',
      from: p.payer,
      ts: Date.now(),
      cid: `m${i}`,
      data: { body: `hello ${i}` },
    }),
  );
  const t = await run(tip);
  await assertLedgerConsistent(replica.database);
  await replica.stop();
  ctx.record({
    name: 'payments',
    server: 'Hubbub (domain services, 1 replica)',
    kind: 'hubbub',
    durationS: 0,
    // assertLedgerConsistent threw otherwise: postings sum to zero and balances equal postings.
    counters: { ledger_inconsistent: 0 },
    figures: {
      ...{ tipsPerS: round(t.perS, 0), tipP50: round(t.p50, 1), tipP99: round(t.p99, 1) },
      ...{ messagesPerS: round(m.perS, 0), messageP50: round(m.p50, 1), messageP99: round(m.p99, 1) },
      tipsVsMessages: round(t.perS / m.perS, 3),
      tipP99VsMessageP99: round(t.p99 / m.p99, 2),
    },
  });
}

// mulberry32, so every run validates the same mix.
function random(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const WORDS =
  'the a to and of in is it you that he was for on are with as I his they be at one have this from or had by hot word but what some we can out other were all there when up use your how said an each she which do their time if will way about many then them write would like so these her long make thing see him two has look more day could go come did number sound no most people my over know water than call first who may down side been now find'.split(
    ' ',
  );

/**
 * What validating a client frame costs: zod (`clientFrame.safeParse`) against the hand-written fast path
 * (`parseClientFrame`), on a fixed mix (mostly `send` with 20 to 200 characters, some `read`, `typing`, `ping`, now and
 * then a `resume` of 1 to 50 conversations); as the socket handler sees a frame (bytes decoded, JSON.parse, validated)
 * and validation alone. The two alternate round by round and the median round counts, so a noisy neighbour slows both.
 */
export async function frames(ctx: Ctx) {
  const { framesCount: count, framesRounds: rounds } = ctx.sizes;
  const rand = random(13);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const hex = (n: number) => Array.from({ length: n }, () => '0123456789abcdef'[int(0, 15)]).join('');
  const uuid = () => `${hex(8)}-${hex(4)}-4${hex(3)}-${'89ab'[int(0, 3)]}${hex(3)}-${hex(12)}`;
  const sentence = () => {
    const len = int(20, 200);
    let s = '';
    while (s.length < len) s += (s ? ' ' : '') + WORDS[int(0, WORDS.length - 1)];
    return s.slice(0, len).trimEnd() + (rand() < 0.1 ? ' 🎉 déjà vu' : '');
  };
  const convs = Array.from({ length: 50 }, uuid);
  const conv = () => convs[int(0, convs.length - 1)]!;
  let n = 0;
  const ref = () => (rand() < 0.8 ? { ref: `r${++n}` } : {});
  const frame = (): Record<string, unknown> => {
    const p = rand();
    if (p < 0.8) {
      const f: Record<string, unknown> = { type: 'send', ...ref(), conv: conv(), cid: `c-${uuid()}`, body: sentence() };
      if (rand() < 0.05) f.replyTo = int(1, 10_000);
      if (rand() < 0.05) f.mentions = Array.from({ length: int(1, 3) }, uuid);
      return f;
    }
    if (p < 0.9) return { type: 'read', conv: conv(), seq: int(1, 10_000) };
    if (p < 0.96) return { type: 'typing', conv: conv() };
    if (p < 0.99) return { type: 'ping', ...ref() };
    return { type: 'resume', ...ref(), convs: Object.fromEntries(Array.from({ length: int(1, 50) }, () => [uuid(), int(0, 10_000)])) };
  };
  const objects = Array.from({ length: count }, frame);
  const bytes = objects.map((f) => new TextEncoder().encode(JSON.stringify(f)).buffer);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  // Both must accept every frame of the mix and agree on it, or the figures compare nothing.
  for (const f of objects) {
    const [z, fast] = [clientFrame.safeParse(f), parseClientFrame(f)];
    assert.ok(z.success && fast.ok, JSON.stringify(f));
    assert.deepStrictEqual(fast.frame, z.data);
  }
  let sink = 0;
  /** Median ns per item over the rounds (after two warm-up rounds), the cases alternating inside each round. */
  const measure = (items: number, cases: ((i: number) => unknown)[]) => {
    const per = cases.map(() => [] as number[]);
    for (let r = -2; r < rounds; r++) {
      cases.forEach((run, k) => {
        const t = process.hrtime.bigint();
        for (let i = 0; i < items; i++) if (run(i)) sink++;
        if (r >= 0) per[k]!.push(Number(process.hrtime.bigint() - t) / items);
      });
    }
    return per.map((xs) => round(xs.sort((a, b) => a - b)[xs.length >> 1]!, 0));
  };
  const rows: (string | number)[][] = [];
  const figures: Record<string, number> = {};
  const row = (what: string, key: string, zod: number, fast: number, base?: number) => {
    rows.push([what, zod, fast, round(fast / zod, 3), round(zod / fast, 2), base ?? '–']);
    Object.assign(figures, { [`${key}ZodNs`]: zod, [`${key}FastNs`]: fast, [`${key}FastVsZod`]: round(fast / zod, 3) });
  };
  const parse = (i: number) => JSON.parse(utf8.decode(bytes[i]!)) as unknown;
  const [base, zodAll, fastAll] = measure(count, [
    parse,
    (i) => clientFrame.safeParse(parse(i)).success,
    (i) => parseClientFrame(parse(i)).ok,
  ]);
  row('mix, bytes to frame', 'mixBytes', zodAll!, fastAll!, base);
  // Validation alone, on frames already parsed (validation does not change its input: the same objects serve every round).
  const [zodMix, fastMix] = measure(count, [(i) => clientFrame.safeParse(objects[i]).success, (i) => parseClientFrame(objects[i]).ok]);
  row('mix, validation only', 'mix', zodMix!, fastMix!);
  for (const type of ['send', 'read', 'typing', 'ping', 'resume']) {
    const ofType = objects.filter((f) => f.type === type);
    const list = Array.from({ length: Math.max(1, Math.ceil(count / 4 / ofType.length)) }, () => ofType).flat();
    const [zod, fast] = measure(list.length, [(i) => clientFrame.safeParse(list[i]).success, (i) => parseClientFrame(list[i]).ok]);
    row(`${type} (${ofType.length}), validation only`, type, zod!, fast!);
  }
  // A ping as bytes: would skipping JSON.parse for it pay? The full path against a byte compare.
  const ping = new TextEncoder().encode('{"type":"ping"}');
  const PING = Buffer.from(ping);
  const [pingFull, pingCompare] = measure(count, [
    () => parseClientFrame(JSON.parse(utf8.decode(ping.buffer))).ok,
    () => PING.equals(new Uint8Array(ping.buffer)),
  ]);
  assert.ok(sink > 0, 'nothing validated');
  ctx.record({
    name: 'frames',
    server: "Hubbub's frame validators",
    kind: 'hubbub',
    durationS: 0,
    counters: {},
    figures: { ...figures, pingFullPathNs: pingFull!, pingByteCompareNs: pingCompare! },
    tables: [
      {
        title: `Frame validation: ${count} frames, median of ${rounds} rounds, node ${process.version}`,
        head: ['frames', 'zod ns/frame', 'fast ns/frame', 'fast/zod', 'speed-up', 'decode+JSON.parse ns'],
        rows,
      },
    ],
  });
}
