// An attacker on its own thread (so its own work does not delay the healthy client's pings in
// the test's event loop): floods a hub until told to stop, then reports what it saw.
import { parentPort, workerData } from 'node:worker_threads';
import WebSocket from 'ws';

const { port, token, kind, conv, frames = 500 } = workerData;
let stop = false;
parentPort.on('message', (m) => {
  if (m === 'stop') stop = true;
});
const stats = { rounds: 0, closes: {}, events: 0, rateLimited: 0, statuses: {}, refusedUpgrades: 0 };

function resumeRound() {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { authorization: `Bearer ${token}` } });
    ws.on('unexpected-response', () => {
      stats.refusedUpgrades++;
      setTimeout(resolve, 5);
    });
    ws.on('error', () => {});
    ws.on('message', (data) => {
      const f = JSON.parse(String(data));
      if (f.type === 'ready') {
        const frame = JSON.stringify({ type: 'resume', convs: { [conv]: 0 } });
        for (let i = 0; i < frames; i++) ws.send(frame);
      } else if (f.type === 'event') stats.events++;
      else if (f.type === 'error' && f.code === 'RATE_LIMITED') stats.rateLimited++;
    });
    ws.on('close', (code) => {
      stats.closes[code] = (stats.closes[code] ?? 0) + 1;
      resolve();
    });
  });
}

async function batchRound() {
  const base = `http://127.0.0.1:${port}/trpc/`;
  const auth = { authorization: `Bearer ${token}` };
  const get = fetch(base + Array(5000).fill('auth.me').join(',') + '?batch=1', { headers: auth });
  const post = fetch(base + Array(1000).fill('profiles.update').join(',') + '?batch=1', {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify(Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [i, { displayName: `hacked ${i}` }]))),
  });
  for (const r of await Promise.all([get, post])) {
    stats.statuses[r.status] = (stats.statuses[r.status] ?? 0) + 1;
    await r.arrayBuffer();
  }
}

while (!stop) {
  await (kind === 'resume' ? resumeRound() : batchRound());
  stats.rounds++;
  // Let the 'stop' message in between rounds.
  await new Promise((r) => setImmediate(r));
}
parentPort.postMessage(stats);
