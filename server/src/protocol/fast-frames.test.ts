import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { fuzzSettings } from '../../../test/fuzz/fuzz-seed.ts';
import { fastClientFrame, parseClientFrame } from './fast-frames.ts';
import { clientFrame, clientFrameTypes } from './frames.ts';
import { hasVisible, isMultiLine, isSingleLine } from './text.ts';

const RUNS = 20_000;
/** The fuzz settings, but shrinking on: a counterexample is worth the smallest frame that shows it. */
const settings = (name: string, runs = RUNS) => ({ ...fuzzSettings(`fast frames: ${name}`, runs), endOnFailure: false });

const counts = { fastOk: 0, refused: 0 };

/**
 * The whole claim, for one input: the fast path accepts exactly what zod accepts and returns what
 * zod returns, keys in the same order; parseClientFrame agrees with zod, refusals carrying zod's
 * first issue.
 */
function agrees(raw: unknown) {
  const fast = fastClientFrame(raw);
  const zod = clientFrame.safeParse(raw);
  assert.equal(
    fast !== undefined,
    zod.success,
    `fast path ${fast ? 'accepted' : 'refused'} what zod ${zod.success ? 'accepts' : 'refuses'}`,
  );
  const parsed = parseClientFrame(raw);
  assert.equal(parsed.ok, zod.success);
  if (zod.success) {
    assert.deepStrictEqual(fast, zod.data);
    assert.equal(JSON.stringify(fast), JSON.stringify(zod.data), 'same keys in the same order');
    if (!parsed.ok) assert.fail('parseClientFrame refused a valid frame');
    assert.deepStrictEqual(parsed.frame, fast);
    counts.fastOk++;
  } else {
    if (parsed.ok) assert.fail('parseClientFrame accepted an invalid frame');
    assert.deepStrictEqual(parsed.issue, zod.error.issues[0]);
    counts.refused++;
  }
}

/** Each input as given and as it comes out of JSON.parse, which is what the hub hands over. */
function agreesBothWays(raw: unknown) {
  agrees(raw);
  const text = JSON.stringify(raw);
  if (text !== undefined) agrees(JSON.parse(text));
}

// ---- what the schemas accept ------------------------------------------------------------------

const NIL = '00000000-0000-0000-0000-000000000000';
const MAX = 'ffffffff-ffff-ffff-ffff-ffffffffffff';
/** Upper-cases the characters whose bit is set in `mask` (cycling over its 31 bits). */
const mixCase = (u: string, mask: number) => [...u].map((c, i) => ((mask >> (i % 31)) & 1 ? c.toUpperCase() : c)).join('');
/** Versions 1 to 8, the RFC variant, either case; the nil and max UUIDs. */
const uuid = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .tuple(
        fc.uuid(),
        fc.constantFrom(...'12345678'),
        fc.constantFrom(...'89abAB'),
        fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0x7fffffff })),
      )
      .map(([u, v, w, mask]) => mixCase(u.slice(0, 14) + v + u.slice(15, 19) + w + u.slice(20), mask)),
  },
  { weight: 2, arbitrary: fc.uuid() },
  fc.constantFrom(NIL, MAX),
);
const badUuid = fc.oneof(
  uuid.map((u) => u.slice(0, 14) + '0' + u.slice(15)), // version 0
  uuid.chain((u) => fc.constantFrom(...'09cdefCDEF').map((v) => u.slice(0, 14) + v + u.slice(15))),
  uuid.chain((u) => fc.constantFrom(...'01234567cdefCDEF').map((w) => u.slice(0, 19) + w + u.slice(20))), // variant
  fc.constantFrom(
    MAX.toUpperCase(),
    NIL.replace(/0$/, '1'),
    `{${NIL}}`,
    NIL.replaceAll('-', ''),
    `${NIL}\n`,
    ` ${NIL}`,
    `${MAX} `,
    `urn:uuid:${NIL}`,
    '',
  ),
  uuid.map((u) => u.slice(1)),
  uuid.map((u) => u + '0'),
  uuid.map((u) => u.replace(/[0-9a-f]/i, 'g')),
  uuid.map((u) => u.replace('-', '\u200b')),
  uuid.map((u) => u.replace(/-/g, '_')),
  fc.string({ minLength: 36, maxLength: 36 }),
);

/** A code point of any plane, or a lone surrogate, or NUL: `ref` allows all three. */
const anyUnit = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff', '\u0000'),
);
const ASTRAL = '\u{1f600}';
const ref = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: anyUnit, minLength: 1, maxLength: 64 }) },
  { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 12 }) },
  fc.constantFrom(
    'r',
    'x'.repeat(64),
    ASTRAL.repeat(64),
    ASTRAL.repeat(63) + 'x',
    '\ud800'.repeat(64),
    '\u0000',
    ' ',
    '__proto__',
    'constructor',
  ),
);
const badRef = fc.constantFrom('', 'x'.repeat(65), ASTRAL.repeat(65), ASTRAL.repeat(64) + 'x', '\ud800'.repeat(65), 'x'.repeat(129));

/** Well-formed text without NUL, 1 to `max` code points. */
const text = (max: number) =>
  fc.oneof(
    {
      weight: 4,
      arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: Math.min(max, 200) }).map((s) => s.replaceAll('\u0000', '0')),
    },
    {
      weight: 2,
      arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: Math.min(max, 40) }).filter((s) => [...s].length <= max),
    },
    fc.constantFrom('x'.repeat(max), ASTRAL.repeat(max), ASTRAL.repeat(max - 1) + 'x', ' ', '\ud83d\ude00'),
  );
const badText = (max: number) =>
  fc.constantFrom(
    '',
    'x'.repeat(max + 1),
    ASTRAL.repeat(max + 1),
    ASTRAL.repeat(max) + 'x',
    'a\u0000b',
    '\u0000',
    'a\ud800',
    '\udc00a',
    '\ud83d',
    '\ude00\ud83d',
  );

/** Every character String.prototype.trim removes, and two it no longer does. */
const SPACES = [
  '\t',
  '\n',
  '\v',
  '\f',
  '\r',
  ' ',
  '\u00a0',
  '\u1680',
  '\u2000',
  '\u2005',
  '\u200a',
  '\u2028',
  '\u2029',
  '\u202f',
  '\u205f',
  '\u3000',
  '\ufeff',
];
const blank = fc.string({ unit: fc.constantFrom(...SPACES), minLength: 1, maxLength: 6 });
/** A body's ceiling: its bounds are checked once each below, 100,000 characters being slow to make 20,000 times. */
const BIG = 100_000;
/** What text.ts allows in a body (the rule itself is tested in text.test.ts; here: fast path = zod). */
const bodyOk = (s: string) => isMultiLine(s) && hasVisible(s);
const body = fc.oneof(
  { weight: 8, arbitrary: text(200).filter(bodyOk) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(blank, text(20), blank)
      .map(([a, s, b]) => a + s + b)
      .filter(bodyOk),
  },
  fc.constantFrom('x', 'a\r\nb', 'a\rb\r', '\r\n\r\nx', '\u200bx', 'x\u180e', '\t\ty\n', '\u200f\u05d0', '\ud83d\udc68\u200d\ud83d\udc69'),
);
/** Text that is blank or holds a character text.ts refuses. */
const refusedText = fc.constantFrom(
  '\u200b',
  '\u180e',
  ' \u200b ',
  '\u200d',
  '\u0085',
  'a\u202eb',
  'a\u2028b',
  '\u2066x\u2069',
  '\ufeffx',
  'x\u007f',
  'x\u001b[31m',
  'x\u009b',
);
const badBody = fc.oneof(blank, badText(20), refusedText);
const emojiOk = (s: string) => isSingleLine(s) && hasVisible(s);
const emoji = fc.oneof(
  { weight: 4, arbitrary: text(32).filter(emojiOk) },
  fc.constantFrom(
    '\ud83d\udc4d',
    '\u2764\ufe0f',
    '\ud83d\udc68\u200d\ud83d\udc69\u200d\ud83d\udc67',
    '\ud83c\udff4\udb40\udc67\udb40\udc62\udb40\udc73\udb40\udc63\udb40\udc74\udb40\udc7f',
  ),
);
const badEmoji = fc.oneof(refusedText, fc.constantFrom('a\nb', '\t', 'x\r'));
const bigBodies = {
  ok: ['x'.repeat(BIG), ASTRAL.repeat(BIG), ASTRAL.repeat(BIG - 1) + 'x', ' '.repeat(BIG - 1) + 'x'],
  bad: ['x'.repeat(BIG + 1), ASTRAL.repeat(BIG + 1), ASTRAL.repeat(BIG) + 'x', ' '.repeat(BIG)],
};

const seq = fc.oneof(
  fc.integer({ min: 1, max: 100 }),
  fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  fc.constantFrom(1, Number.MAX_SAFE_INTEGER, 2 ** 31, 2 ** 32),
);
const cursor = fc.oneof(seq, fc.constantFrom(0, -0));
const badNumber = fc.oneof(
  fc.constantFrom(
    0.5,
    1.000001,
    -1,
    -Number.MAX_SAFE_INTEGER,
    Number.MAX_SAFE_INTEGER + 1,
    Number.MAX_SAFE_INTEGER + 2,
    2 ** 53,
    2 ** 64,
    1e308,
    -1e308,
    5e-324,
    NaN,
    Infinity,
    -Infinity,
  ),
  fc.double().filter((d) => !Number.isSafeInteger(d)),
  fc.constantFrom('1', '0', '-0', 'NaN', '1e309', '0x10', ' 1', true, null, [], {}, [1]),
);
const mentions = fc.oneof({ weight: 4, arbitrary: fc.array(uuid, { maxLength: 50 }) }, fc.array(uuid, { minLength: 50, maxLength: 50 }));
const convs = fc.dictionary(uuid, cursor, { maxKeys: 50 });

const valid = {
  send: fc.record(
    {
      type: fc.constant('send'),
      ref,
      conv: uuid,
      cid: text(64),
      body,
      replyTo: seq,
      mentions,
      attachments: fc.array(uuid, { minLength: 1, maxLength: 10 }),
    },
    { requiredKeys: ['type', 'conv', 'cid'] },
  ),
  edit: fc.record({ type: fc.constant('edit'), ref, conv: uuid, seq, body, mentions }, { requiredKeys: ['type', 'conv', 'seq', 'body'] }),
  delete: fc.record({ type: fc.constant('delete'), ref, conv: uuid, seq }, { requiredKeys: ['type', 'conv', 'seq'] }),
  react: fc.record(
    { type: fc.constant('react'), ref, conv: uuid, seq, emoji, on: fc.boolean() },
    { requiredKeys: ['type', 'conv', 'seq', 'emoji', 'on'] },
  ),
  read: fc.record({ type: fc.constant('read'), ref, conv: uuid, seq: cursor }, { requiredKeys: ['type', 'conv', 'seq'] }),
  typing: fc.record({ type: fc.constant('typing'), ref, conv: uuid }, { requiredKeys: ['type', 'conv'] }),
  resume: fc.record({ type: fc.constant('resume'), ref, convs }, { requiredKeys: ['type', 'convs'] }),
  ping: fc.record({ type: fc.constant('ping'), ref }, { requiredKeys: ['type'] }),
} satisfies Record<string, fc.Arbitrary<Record<string, unknown>>>;
const anyValid = fc.oneof(...Object.values(valid));

// ---- near misses ------------------------------------------------------------------------------

const FIELDS = ['type', 'ref', 'conv', 'cid', 'body', 'replyTo', 'mentions', 'attachments', 'seq', 'emoji', 'on', 'convs'];
/** Values of the wrong type or just outside a field's bounds, and valid values of the other fields. */
const wrong = fc.oneof(
  badUuid,
  badRef,
  badText(64),
  badText(32),
  badBody,
  badEmoji,
  badNumber,
  uuid,
  ref,
  seq,
  cursor,
  mentions,
  convs,
  fc.boolean(),
  fc.constantFrom(null, '', 0, -0, 1, [], {}, [NIL], 'send', 'ping', 'SEND', 'send ', ...clientFrameTypes),
  fc.constantFrom(Array(50).fill(MAX), Array(51).fill(NIL), [...Array(49).fill(NIL), NIL.toUpperCase()]),
  fc.array(fc.oneof({ weight: 20, arbitrary: uuid }, badUuid), { minLength: 49, maxLength: 52 }),
  fc.jsonValue({ maxDepth: 2 }),
);
const extraKey = fc.oneof(
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    'valueOf',
    'extra',
    'Type',
    'type ',
    '',
    '0',
    ...FIELDS,
  ),
  fc.string({ maxLength: 8 }),
);

type Mutation = (f: Record<string, unknown>) => void;
/** An own property even for `__proto__`, as JSON.parse makes it. */
const put = (o: Record<string, unknown>, k: string, v: unknown) =>
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.tuple(fc.constantFrom(...FIELDS), wrong).map(
    ([k, v]): Mutation =>
      (f) =>
        put(f, k, v),
  ),
  fc.constantFrom(...FIELDS).map(
    (k): Mutation =>
      (f) =>
        delete f[k],
  ),
  fc.tuple(extraKey, wrong).map(
    ([k, v]): Mutation =>
      (f) =>
        put(f, k, v),
  ),
  // Inside resume's convs and the mentions array.
  fc.tuple(fc.oneof(badUuid, extraKey, uuid), fc.oneof(cursor, badNumber)).map(
    ([k, v]): Mutation =>
      (f) => {
        if (f.convs && typeof f.convs === 'object') put(f.convs as Record<string, unknown>, k, v);
      },
  ),
  fc.tuple(fc.nat(60), fc.oneof(badUuid, uuid, badNumber)).map(
    ([i, v]): Mutation =>
      (f) => {
        if (Array.isArray(f.mentions)) f.mentions[Math.min(i, f.mentions.length)] = v;
      },
  ),
);
const nearValid = fc.tuple(anyValid, fc.array(mutation, { minLength: 1, maxLength: 3 })).map(([f, ms]) => {
  const copy = structuredClone(f);
  for (const m of ms) m(copy);
  return copy;
});

// ---- anything ---------------------------------------------------------------------------------

/** A known type with any mix of the known fields holding any JSON. */
const shaped = fc
  .tuple(
    fc.constantFrom(...clientFrameTypes),
    fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS.slice(1)), extraKey), fc.oneof(wrong, fc.jsonValue({ maxDepth: 2 })), { maxKeys: 5 }),
  )
  .map(([type, rest]) => ({ ...rest, type }));
const arbitraryJson = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  shaped,
  fc.json({ maxDepth: 3 }).map((t) => JSON.parse(t) as unknown),
);

describe('fast frames: the hand-written validator is zod, faster', () => {
  test('(a) every valid frame of every type: zod accepts it, the fast path returns the same frame', () => {
    for (const [type, arb] of Object.entries(valid)) {
      fc.assert(
        fc.property(arb, (f) => {
          assert.ok(clientFrame.safeParse(f).success, 'the generator makes valid frames only');
          assert.notEqual(fastClientFrame(f), undefined, `a valid ${type} frame takes the fast path`);
          agreesBothWays(f);
        }),
        // RUNS in all, a quarter of them sends (most of the traffic), unless FUZZ_RUNS says otherwise.
        settings(`valid ${type}`, Math.ceil(type === 'send' ? RUNS / 4 : (RUNS * 3) / 4 / 7)),
      );
    }
  });

  test('(b) near-valid frames: wrong types, bounds ±1, missing and extra keys, odd text, bad ids, __proto__', () => {
    const before = { ...counts };
    fc.assert(fc.property(nearValid, agreesBothWays), settings('near-valid'));
    console.log(
      `[fuzz] fast frames: near-valid: ${counts.fastOk - before.fastOk} accepted, ${counts.refused - before.refused} refused (each input as given and through JSON)`,
    );
    // Both answers must have come up often, or the mutations test only one side.
    assert.ok(counts.fastOk - before.fastOk > RUNS / 20, `accepted ${counts.fastOk - before.fastOk}`);
    assert.ok(counts.refused - before.refused > RUNS / 2, `refused ${counts.refused - before.refused}`);
  });

  test('(c) arbitrary JSON values and frames of any shape', () => {
    fc.assert(fc.property(arbitraryJson, agreesBothWays), settings('arbitrary JSON'));
  });

  test('(d) values JSON cannot make: the fast path never accepts what zod refuses, nor returns another frame', () => {
    const odd = fc.oneof(
      fc.anything({
        withNullPrototype: true,
        withBoxedValues: true,
        withMap: true,
        withSet: true,
        withObjectString: true,
        withSparseArray: true,
        withTypedArray: true,
        withDate: true,
        withBigInt: true,
      }),
      fc.tuple(anyValid, fc.constantFrom(...FIELDS)).map(([f, k]) => ({ ...f, [k]: undefined })),
      anyValid.map((f) => Object.assign(Object.create({ ref: 'inherited' }) as object, f)),
      anyValid.map((f) => Object.assign([], f)),
      anyValid.map((f) => ({ ...f, [Symbol('s')]: 1 })),
      valid.resume.map((f) => ({ ...f, convs: Object.assign(new (class Convs {})(), f.convs) })),
      valid.resume.map((f) => ({ ...f, convs: { ...f.convs, [Symbol('s')]: 1 } })),
      valid.send.map((f) => ({ ...f, mentions: Object.assign(new (class Ids extends Array {})(), [NIL]) })),
    );
    fc.assert(
      fc.property(odd, (raw) => {
        const fast = fastClientFrame(raw);
        const zod = clientFrame.safeParse(raw);
        if (fast !== undefined) {
          assert.ok(zod.success, 'zod accepts what the fast path accepts');
          assert.deepStrictEqual(fast, zod.data);
        }
        const parsed = parseClientFrame(raw);
        assert.equal(parsed.ok, zod.success);
        if (parsed.ok && zod.success) assert.deepStrictEqual(parsed.frame, zod.data);
      }),
      settings('non-JSON values', RUNS / 4),
    );
  });

  test('edges the generators reach rarely: the body and resume ceilings, __proto__ in convs, -0 from JSON text', () => {
    for (const [ok, bodies] of [
      [true, bigBodies.ok],
      [false, bigBodies.bad],
    ] as const) {
      for (const b of bodies) {
        for (const f of [
          { type: 'send', conv: NIL, cid: 'c', body: b },
          { type: 'edit', conv: NIL, seq: 1, body: b },
        ]) {
          assert.equal(clientFrame.safeParse(f).success, ok);
          agreesBothWays(f);
        }
      }
    }
    const many = (n: number) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`, i]));
    for (const n of [10_000, 10_001]) agrees({ type: 'resume', convs: many(n) });
    assert.notEqual(fastClientFrame({ type: 'resume', convs: many(10_000) }), undefined);
    assert.equal(fastClientFrame({ type: 'resume', convs: many(10_001) }), undefined);
    // 10,000 conversations and one own __proto__ key: zod drops the key, so it is not a 10,001st.
    const atCeiling = JSON.parse(
      JSON.stringify({ type: 'resume', convs: many(10_000) }).replace('{"0000', '{"__proto__":1,"0000'),
    ) as unknown;
    agrees(atCeiling);
    assert.ok(clientFrame.safeParse(atCeiling).success);
    for (const t of [
      `{"type":"read","conv":"${NIL}","seq":-0}`,
      `{"type":"read","conv":"${NIL}","seq":-0.0}`,
      `{"type":"read","conv":"${NIL}","seq":1e2}`,
      `{"type":"read","conv":"${NIL}","seq":1.0}`,
      `{"type":"read","conv":"${NIL}","seq":9007199254740992}`,
      `{"type":"send","conv":"${NIL}","cid":"c","body":"\\ud83d\\ude00"}`,
      `{"type":"send","conv":"${NIL}","cid":"c","body":"\\ud83d"}`,
      `{"type":"send","conv":"${NIL}","cid":"c","body":"x\\u0000"}`,
      `{"type":"ping","__proto__":{"admin":true}}`,
      `{"type":"ping","ref":"a","ref":"b"}`,
      `{"type":"resume","convs":{"__proto__":{"x":1}}}`,
      `{"type":"resume","convs":{"__proto__":5,"${NIL}":0}}`,
      `{"type":"typing","conv":"${NIL}","constructor":{}}`,
    ]) {
      agrees(JSON.parse(t));
    }
    assert.ok(Object.is((fastClientFrame(JSON.parse(`{"type":"read","conv":"${NIL}","seq":-0}`)) as { seq: number }).seq, -0));
  });
});
