/**
 * `npm run bench:frames`: what validating a client frame costs, zod (`clientFrame.safeParse`)
 * against the hand-written fast path (`parseClientFrame`), in one process and one run. The frames
 * are a realistic mix, made once from a fixed seed: mostly `send` with a 20 to 200 character body,
 * some `read`, `typing` and `ping`, now and then a `resume` of 1 to 50 conversations. Each is timed
 * as the socket handler sees it (UTF-8 bytes decoded, JSON.parse, validated) and validation alone
 * on parsed frames; zod and the fast path alternate round by round and the median round counts,
 * so a noisy neighbour slows both alike. Prints ns per frame and fast/zod as a ratio.
 *
 *   npm run bench:frames                          # 20,000 frames, 15 rounds
 *   npm run bench:frames -- --frames 50000 --rounds 25
 */
import assert from 'node:assert/strict';
import { parseArgs } from 'node:util';
import { parseClientFrame } from '../server/src/protocol/fast-frames.ts';
import { clientFrame } from '../server/src/protocol/frames.ts';

const { values } = parseArgs({ options: { frames: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '15' }, seed: { type: 'string', default: '13' } } });
const FRAMES = Number(values.frames);
const ROUNDS = Number(values.rounds);

// mulberry32: the same mix on every run.
let state = Number(values.seed) >>> 0;
const rand = () => {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
const hex = (n: number) => Array.from({ length: n }, () => '0123456789abcdef'[int(0, 15)]).join('');
const uuid = () => `${hex(8)}-${hex(4)}-4${hex(3)}-${'89ab'[int(0, 3)]}${hex(3)}-${hex(12)}`;
const WORDS = 'the a to and of in is it you that he was for on are with as I his they be at one have this from or had by hot word but what some we can out other were all there when up use your how said an each she which do their time if will way about many then them write would like so these her long make thing see him two has look more day could go come did number sound no most people my over know water than call first who may down side been now find'.split(' ');
const sentence = (min: number, max: number) => {
  const len = int(min, max);
  let s = '';
  while (s.length < len) s += (s ? ' ' : '') + WORDS[int(0, WORDS.length - 1)];
  s = s.slice(0, len).trimEnd();
  return rand() < 0.1 ? s + ' 🎉 déjà vu' : s;
};

const convs = Array.from({ length: 50 }, uuid);
const conv = () => convs[int(0, convs.length - 1)]!;
let n = 0;
const ref = () => (rand() < 0.8 ? { ref: `r${++n}` } : {});
function frame(): Record<string, unknown> {
  const p = rand();
  if (p < 0.8) {
    const f: Record<string, unknown> = { type: 'send', ...ref(), conv: conv(), cid: `c-${uuid()}`, body: sentence(20, 200) };
    if (rand() < 0.05) f.replyTo = int(1, 10_000);
    if (rand() < 0.05) f.mentions = Array.from({ length: int(1, 3) }, uuid);
    return f;
  }
  if (p < 0.9) return { type: 'read', conv: conv(), seq: int(1, 10_000) };
  if (p < 0.96) return { type: 'typing', conv: conv() };
  if (p < 0.99) return { type: 'ping', ...ref() };
  return { type: 'resume', ...ref(), convs: Object.fromEntries(Array.from({ length: int(1, 50) }, () => [uuid(), int(0, 10_000)])) };
}

const objects = Array.from({ length: FRAMES }, frame);
const bytes = objects.map((f) => new TextEncoder().encode(JSON.stringify(f)).buffer);
const utf8 = new TextDecoder('utf-8', { fatal: true });
// Both must accept every frame of the mix, and agree on it, or the figures compare nothing.
for (const f of objects) {
  const z = clientFrame.safeParse(f);
  const fast = parseClientFrame(f);
  assert.ok(z.success && fast.ok, JSON.stringify(f));
  assert.deepStrictEqual(fast.frame, z.data);
}

type Case = { name: string; run: (i: number) => unknown };
let sink = 0;
const consume = (v: unknown) => {
  if (v) sink++;
};
/** Median ns per frame over the rounds, the cases alternating inside each round. */
function measure(items: number, cases: Case[]): number[] {
  const perRound = cases.map(() => [] as number[]);
  for (let r = -2; r < ROUNDS; r++) {
    cases.forEach((c, k) => {
      const t = process.hrtime.bigint();
      for (let i = 0; i < items; i++) consume(c.run(i));
      const ns = Number(process.hrtime.bigint() - t) / items;
      if (r >= 0) perRound[k]!.push(ns); // two warm-up rounds
    });
  }
  return perRound.map((xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!);
}

const rows: string[][] = [];
const row = (what: string, zod: number, fast: number, base?: number) => {
  rows.push([what, zod.toFixed(0), fast.toFixed(0), (fast / zod).toFixed(3), (zod / fast).toFixed(2), base === undefined ? '' : base.toFixed(0)]);
};

// The handler's whole path: bytes → string → JSON → frame; decode + JSON.parse alone beside it.
{
  const [base, zod, fast] = measure(FRAMES, [
    { name: 'decode+parse', run: (i) => JSON.parse(utf8.decode(bytes[i]!)) },
    { name: 'zod', run: (i) => clientFrame.safeParse(JSON.parse(utf8.decode(bytes[i]!))).success },
    { name: 'fast', run: (i) => parseClientFrame(JSON.parse(utf8.decode(bytes[i]!))).ok },
  ]);
  row('mix, bytes to frame', zod!, fast!, base);
}
// Validation alone, on frames already parsed (a fresh parse per round would be timed otherwise:
// validation does not change its input, so the same objects serve every round).
{
  const [zod, fast] = measure(FRAMES, [
    { name: 'zod', run: (i) => clientFrame.safeParse(objects[i]).success },
    { name: 'fast', run: (i) => parseClientFrame(objects[i]).ok },
  ]);
  row('mix, validation only', zod!, fast!);
}
for (const type of ['send', 'read', 'typing', 'ping', 'resume']) {
  const ofType = objects.filter((f) => f.type === type);
  const reps = Math.max(1, Math.ceil(FRAMES / 4 / ofType.length));
  const list = Array.from({ length: reps }, () => ofType).flat();
  const [zod, fast] = measure(list.length, [
    { name: 'zod', run: (i) => clientFrame.safeParse(list[i]).success },
    { name: 'fast', run: (i) => parseClientFrame(list[i]).ok },
  ]);
  row(`${type} (${ofType.length}), validation only`, zod!, fast!);
}
// A ping as bytes: would skipping JSON.parse for it pay? Compare the bytes, or take the full path.
const ping = new TextEncoder().encode('{"type":"ping"}');
const PING = Buffer.from(ping);
const [pingFull, pingCmp] = measure(FRAMES, [
  { name: 'decode+parse+fast', run: () => parseClientFrame(JSON.parse(utf8.decode(ping.buffer))).ok },
  { name: 'byte compare', run: () => PING.equals(new Uint8Array(ping.buffer)) },
]);

const head = ['frames', 'zod ns/frame', 'fast ns/frame', 'fast/zod', 'speed-up', 'decode+JSON.parse ns'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
console.log(`frames-bench: ${FRAMES} frames (${(['send', 'read', 'typing', 'ping', 'resume'] as const).map((t) => `${t} ${objects.filter((f) => f.type === t).length}`).join(', ')}), median of ${ROUNDS} rounds, node ${process.version}`);
console.log(line(head));
for (const r of rows) console.log(line(r));
console.log(`ping {"type":"ping"}: decode+JSON.parse+fast ${pingFull!.toFixed(0)} ns, a byte compare ${pingCmp!.toFixed(0)} ns`);
if (sink === 0) console.log('(nothing validated)');
