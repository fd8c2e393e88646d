import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryBus } from '../bus/bus.memory.ts';
import { createLogger } from '../observability/logger.ts';
import { MemoryPresence } from '../presence/presence.memory.ts';
import { membershipMessage, parseBusJson, presenceBatch, userControlMessage } from './bus-messages.ts';
import { PresenceAnnouncer } from './presence-announcer.ts';

const logger = createLogger({ level: 'silent', replicaId: 'test' });

test('control messages off the bus are checked by their schema: a well-formed one passes as it is', () => {
  const added = { k: 'added', conv: 'c1', fromSeq: 3, frame: '{}' };
  assert.deepEqual(parseBusJson(userControlMessage, JSON.stringify(added), logger, 'u:1'), added);
  const m = { users: ['a', 'b'], ctl: { k: 'removed', conv: 'c1', frame: '{}' }, confirm: { to: 'k:abc', id: '7' } };
  assert.deepEqual(parseBusJson(membershipMessage, JSON.stringify(m), logger, 'm'), m);
});

test('a malformed control or presence message is dropped, never cast', () => {
  for (const bad of [
    'not json',
    '{"k":"added","conv":"c1","frame":"{}"}', // no fromSeq
    '{"k":"added","conv":"c1","fromSeq":-1,"frame":"{}"}',
    '{"k":"grant","conv":"c1"}',
    '{"k":"revoke","sessions":"some"}',
    `{"k":"removed","conv":"${'x'.repeat(201)}","frame":"{}"}`,
  ])
    assert.equal(parseBusJson(userControlMessage, bad, logger, 'u:1'), null, bad);
  assert.equal(
    parseBusJson(membershipMessage, '{"users":["a"],"ctl":{"k":"frame","frame":"{}"},"confirm":{"to":"elsewhere","id":"1"}}', logger, 'm'),
    null,
  );
  for (const bad of ['{}', '[["u","away",0,["c"]]]', '[["u","online",0,[1]]]', '[["u","online"]]'])
    assert.equal(parseBusJson(presenceBatch, bad, logger, 'p'), null, bad);
});

test('a presence batch with an unknown status reaches no socket; a valid one does', () => {
  const fanned: string[] = [];
  const announcer = new PresenceAnnouncer({
    bus: new MemoryBus(),
    presence: new MemoryPresence(),
    logger,
    graceMs: 0,
    conversationsOf: async () => [],
    hasSockets: () => false,
    fanout: (conv, frame) => fanned.push(`${conv} ${Buffer.from(frame()).toString()}`),
  });
  announcer.onMessage(JSON.stringify([['u1', 'away', 0, ['c1']]]));
  assert.deepEqual(fanned, []);
  announcer.onMessage(JSON.stringify([['u1', 'offline', 5, ['c1']]]));
  assert.deepEqual(fanned, ['c1 {"type":"presence","user":"u1","status":"offline","lastSeen":5}']);
  announcer.stop();
});
