import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClientFrame as SdkClientFrame } from '@hubbub/client/protocol';
import { clientFrame, clientFrameTypes, type ClientFrame as HubClientFrame } from '../../server/src/protocol/frames.ts';

// Both ways at compile time: a frame the SDK can build is one the hub's schema types, and back.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameFrames: Same<SdkClientFrame, HubClientFrame> = true;
// And the same fields in each kind (assignability alone lets an optional field be on one side only).
type Fields<U, T> = U extends { type: T } ? keyof U : never;
const sameFields: { [T in SdkClientFrame['type']]: Same<Fields<SdkClientFrame, T>, Fields<HubClientFrame, T>> } = {
  send: true,
  edit: true,
  delete: true,
  react: true,
  read: true,
  typing: true,
  resume: true,
  ping: true,
};

const conv = '00000000-0000-4000-8000-000000000001';
/** One of each client frame, typed by the SDK's type. */
const samples: SdkClientFrame[] = [
  { type: 'send', ref: 'r1', conv, cid: 'c1', body: 'hi', replyTo: 1, mentions: [conv] },
  { type: 'edit', conv, seq: 2, body: 'edited' },
  { type: 'delete', conv, seq: 2 },
  { type: 'react', conv, seq: 2, emoji: '👍', on: true },
  { type: 'read', conv, seq: 0 },
  { type: 'typing', conv },
  { type: 'resume', ref: 'resume', convs: { [conv]: 3 } },
  { type: 'ping', ref: 'p' },
];

test('the SDK’s client frame type is the hub’s: every kind, and each sample passes the hub’s schema', () => {
  assert.equal(sameFrames, true);
  assert.ok(Object.values(sameFields).every(Boolean));
  assert.deepEqual(new Set(samples.map((s) => s.type)), clientFrameTypes);
  for (const s of samples) assert.deepEqual(clientFrame.parse(s), s);
});
