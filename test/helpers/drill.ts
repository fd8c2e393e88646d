import { readFileSync } from 'node:fs';
import { DrillClient } from './drill-client.ts';
import { haproxyConfig, startHaproxy, type Haproxy, type Slot } from './haproxy.ts';
import { freePort } from './ports.ts';
import { spawnReplica, type ProcessReplica } from './process-replica.ts';
import { containerReplica } from './podman.ts';
import { newUser } from './server.ts';

/**
 * The rolling-deploy drill: hub processes behind deploy/haproxy.cfg, chat clients (the SDK,
 * checked frame by frame) sending at a steady rate through the balancer, and, under that load,
 * each hub replaced in turn (a new one started in a free slot and up, then SIGTERM to the old
 * one, which drains and exits, as a Deployment with maxSurge 1 and maxUnavailable 0 does), then
 * a scale-out to three hubs and back to two. Every acked message must reach every member once,
 * in order, and be stored once.
 */
export interface DrillOptions {
  /** Hub environment: DATABASE_URL, REDIS_URL, JWT_SECRET (shared by every hub). */
  env: Record<string, string>;
  rooms: number;
  members: number;
  /** Sends per second over all rooms. */
  rate: number;
  /** Sockets with no traffic but the SDK's pings: they must only ever be closed by a drain (1012). */
  idle: number;
  /** Second sockets of existing members opened after the scale-out (they show where new sockets go). */
  late: number;
  warmupS: number;
  settleS: number;
  /** Run the production build (dist/) rather than the sources. */
  dist?: boolean;
  /** Run each hub in a container of this image instead (podman, host network). */
  image?: string;
  log?: (line: string) => void;
}

export interface DrillStep {
  step: string;
  upMs?: number;
  drainMs?: number;
  exitCode?: number | null;
  sockets?: Record<string, number>;
}

export interface DrillReport {
  hubs: string;
  clients: number;
  durationS: number;
  steps: DrillStep[];
  sends: { acked: number; failed: number };
  deliveries: { expected: number; received: number; lost: number; duplicated: number; outOfOrder: number };
  stored: { messages: number; storedTwice: number; missing: number };
  reconnects: { count: number; p50: number; p99: number; max: number };
  longestGapMs: number;
  ackMs: { p50: number; p99: number; max: number };
  closeCodes: Record<string, number>;
  /** Each close other than a drain's 1012: which socket, on which hub, code and reason. */
  otherCloses: string[];
  idle: { sockets: number; closedOtherThan1012: number; longestHeldS: number; lbTimeoutS: { client: number; tunnel: number } };
  ok: boolean;
}

const pct = (xs: number[], p: number) =>
  xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]! : 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runDrill(o: DrillOptions): Promise<DrillReport> {
  const log = o.log ?? (() => {});
  const t0 = Date.now();
  const slots: Slot[] = [];
  // HAProxy's server lines: a hub process runs in a slot; a replacement takes a free one.
  for (let i = 1; i <= 4; i++) slots.push({ name: `slot${i}`, port: await freePort() });
  const running = new Map<string, ProcessReplica>();
  let started = 0;
  const start = async (slot: Slot) => {
    // Each process its own replica id, as each pod has its own name.
    const env = { ...o.env, PORT: String(slot.port), REPLICA_ID: `hub-${++started}`, TRUST_PROXY: 'true', LOGIN_MAX_PER_IP: '100000' };
    const p = o.image
      ? await containerReplica(o.image, `hubbub-drill-${process.pid}-${started}`, env)
      : await spawnReplica(env, { dist: o.dist });
    running.set(slot.name, p);
    return p;
  };
  const free = () => slots.find((s) => !running.has(s.name))!;
  let lb: Haproxy | undefined;
  const clients: DrillClient[] = [];
  const idle: DrillClient[] = [];
  const steps: DrillStep[] = [];
  try {
    await Promise.all([start(slots[0]!), start(slots[1]!)]);
    lb = await startHaproxy(slots);
    await Promise.all([lb.state('slot3', 'DOWN'), lb.state('slot4', 'DOWN')]);
    const wsUrl = `ws://127.0.0.1:${lb.port}/ws`;

    // Rooms, their members' sockets, and the idle sockets (users in no room with traffic).
    const rooms: { conv: string; members: DrillClient[]; users: Awaited<ReturnType<typeof newUser>>[] }[] = [];
    for (let r = 0; r < o.rooms; r++) {
      const users = [];
      for (let m = 0; m < o.members; m++) users.push(await newUser(lb.port, `d${r}`));
      const conv = (
        await users[0]!.client.conversations.createGroup.mutate({ title: `drill ${r}`, memberIds: users.slice(1).map((u) => u.id) })
      ).id;
      const members = users.map((u, m) => new DrillClient(`r${r}m${m}`, wsUrl, u.accessToken));
      clients.push(...members);
      rooms.push({ conv, members, users });
    }
    for (let i = 0; i < o.idle; i++) idle.push(new DrillClient(`idle${i}`, wsUrl, (await newUser(lb.port, 'idle')).accessToken));
    await Promise.all([...clients, ...idle].map((c) => c.connect()));
    log(`${clients.length} clients and ${idle.length} idle sockets connected through HAProxy`);

    // The load: an open loop over the rooms, each send from the next member in turn.
    const acks: { conv: string; cid: string; seq: number; ms: number }[] = [];
    const pending = new Set<Promise<unknown>>();
    let failed = 0;
    let sending = true;
    let n = 0;
    for (const c of clients) c.measuring = true;
    const loop = (async () => {
      const t = Date.now();
      while (sending) {
        const room = rooms[n % rooms.length]!;
        const from = room.members[Math.floor(n / rooms.length) % room.members.length]!;
        const cid = `drill-${n}`;
        const sentAt = Date.now();
        const p = from.sdk
          .send(room.conv, `drill ${n}`, { cid })
          .then((a) => void acks.push({ conv: a.conv, cid, seq: a.seq, ms: Date.now() - sentAt }))
          .catch((err) => (failed++, log(`send ${cid} failed: ${err.message}`)))
          .finally(() => pending.delete(p));
        pending.add(p);
        n++;
        await sleep(Math.max(0, t + (n * 1000) / o.rate - Date.now()));
      }
    })();
    const where = () => {
      const out: Record<string, number> = {};
      for (const c of [...clients, ...idle]) if (c.sdk.connected) out[c.hub] = (out[c.hub] ?? 0) + 1;
      return out;
    };
    const settle = async (s: number) => sleep(s * 1000);

    await settle(o.warmupS);
    // Each original hub replaced in turn: the new one up first, then the old one drained.
    for (const old of ['slot1', 'slot2']) {
      const slot = free();
      const since = lb.logs.length;
      const tUp = Date.now();
      await start(slot);
      await lb.state(slot.name, 'UP', since);
      const upMs = Date.now() - tUp;
      const p = running.get(old)!;
      const tDrain = Date.now();
      p.child.kill('SIGTERM');
      const exitCode = await p.exited;
      running.delete(old);
      steps.push({ step: `replace ${old} by ${slot.name}`, upMs, drainMs: Date.now() - tDrain, exitCode });
      log(`replaced ${old} by ${slot.name}: up in ${upMs} ms, drained in ${Date.now() - tDrain} ms (exit ${exitCode})`);
      await settle(o.settleS);
      steps.at(-1)!.sockets = where();
    }
    // Scale out to three: the new hub takes the sockets opened from now on (leastconn).
    {
      const slot = free();
      const since = lb.logs.length;
      const tUp = Date.now();
      await start(slot);
      await lb.state(slot.name, 'UP', since);
      const upMs = Date.now() - tUp;
      for (let i = 0; i < o.late; i++) {
        const room = rooms[i % rooms.length]!;
        const u = room.users[Math.floor(i / rooms.length) % room.users.length]!;
        const c = new DrillClient(`late${i}`, wsUrl, u.accessToken);
        c.measuring = true;
        await c.connect();
        room.members.push(c);
        clients.push(c);
      }
      log(`scaled out to 3 with ${slot.name}: up in ${upMs} ms`);
      await settle(o.settleS);
      steps.push({ step: `scale 2 -> 3 (${slot.name})`, upMs, sockets: where() });
    }
    // And back to two: the newest hub drains.
    {
      const newest = [...running.keys()].at(-1)!;
      const p = running.get(newest)!;
      const tDrain = Date.now();
      p.child.kill('SIGTERM');
      const exitCode = await p.exited;
      running.delete(newest);
      log(`scaled in to 2: ${newest} drained in ${Date.now() - tDrain} ms`);
      await settle(o.settleS);
      steps.push({ step: `scale 3 -> 2 (${newest})`, drainMs: Date.now() - tDrain - o.settleS * 1000, exitCode, sockets: where() });
    }

    sending = false;
    await loop;
    while (pending.size) await Promise.allSettled([...pending]);
    for (const c of clients) c.measuring = false;
    // Every acked message reaches every member socket: all of them after where its log started
    // (its first `ready`; before every send for all but the late sockets).
    const maxSeq = new Map(rooms.map((r) => [r.conv, Math.max(0, ...acks.filter((a) => a.conv === r.conv).map((a) => a.seq))]));
    const members = rooms.flatMap((room) => room.members.map((c) => ({ c, conv: room.conv })));
    await Promise.allSettled(
      members.map(({ c, conv }) => c.until(() => (c.last.get(conv) ?? 0) >= maxSeq.get(conv)!, 30_000, 'the last acked seq')),
    );
    let exp = 0;
    let got = 0;
    for (const { c, conv } of members) {
      const want = acks.filter((a) => a.conv === conv && a.seq > (c.start.get(conv) ?? 0));
      exp += want.length;
      got += want.filter((a) => c.received.has(`${conv}:${a.seq}`)).length;
    }

    // Stored once: the history of each room holds each acked cid exactly once, at its acked seq.
    let storedTwice = 0;
    let missing = 0;
    let messages = 0;
    for (const room of rooms) {
      const seen = new Map<string, number[]>();
      for (let after = 0; ; ) {
        const page = await room.users[0]!.client.conversations.history.query({ conversationId: room.conv, afterSeq: after, limit: 100 });
        if (!page.events.length) break;
        for (const e of page.events) {
          const cid = (e as { cid?: string }).cid;
          if (e.kind === 'message' && cid) seen.set(cid, [...(seen.get(cid) ?? []), e.seq]);
        }
        after = page.events.at(-1)!.seq;
      }
      for (const a of acks.filter((x) => x.conv === room.conv)) {
        const seqs = seen.get(a.cid) ?? [];
        if (seqs.length > 1) storedTwice++;
        if (!seqs.includes(a.seq)) missing++;
      }
      messages += seen.size;
    }

    const all = [...clients, ...idle];
    const reconnects = all.flatMap((c) => c.reconnectMs);
    const codes: Record<string, number> = {};
    for (const c of all) for (const [code, k] of c.closes) codes[code] = (codes[code] ?? 0) + k;
    const cfg = readFileSync(haproxyConfig, 'utf8');
    const seconds = (name: string) => {
      const m = new RegExp(`^\\s*timeout ${name}\\s+(\\d+)(s|m|h)`, 'm').exec(cfg)!;
      return Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as 's' | 'm' | 'h'];
    };
    for (const c of all) c.close();
    const report: DrillReport = {
      hubs: `HAProxy (deploy/haproxy.cfg) in front of 2-3 hub ${o.image ? `containers of ${o.image}` : 'processes'} on one Redis and PostgreSQL`,
      clients: clients.length,
      durationS: Math.round((Date.now() - t0) / 1000),
      steps,
      sends: { acked: acks.length, failed },
      deliveries: {
        expected: exp,
        received: got,
        lost: exp - got,
        duplicated: all.reduce((s, c) => s + c.duplicates, 0),
        outOfOrder: all.reduce((s, c) => s + c.outOfOrder, 0),
      },
      stored: { messages, storedTwice, missing },
      reconnects: { count: reconnects.length, p50: pct(reconnects, 50), p99: pct(reconnects, 99), max: Math.max(0, ...reconnects) },
      longestGapMs: Math.max(0, ...clients.map((c) => c.maxGapMs)),
      ackMs: {
        p50: pct(
          acks.map((a) => a.ms),
          50,
        ),
        p99: pct(
          acks.map((a) => a.ms),
          99,
        ),
        max: Math.max(0, ...acks.map((a) => a.ms)),
      },
      closeCodes: codes,
      otherCloses: all.flatMap((c) => c.unexpected),
      idle: {
        sockets: idle.length,
        closedOtherThan1012: idle.reduce((s, c) => s + [...c.closes].filter(([code]) => code !== 1012).reduce((x, [, k]) => x + k, 0), 0),
        longestHeldS: Math.round(Math.max(0, ...idle.map((c) => c.longestConnectionMs)) / 1000),
        lbTimeoutS: { client: seconds('client'), tunnel: seconds('tunnel') },
      },
      ok: false,
    };
    report.ok =
      failed === 0 &&
      acks.length > 0 &&
      report.deliveries.lost === 0 &&
      report.deliveries.duplicated === 0 &&
      report.deliveries.outOfOrder === 0 &&
      storedTwice === 0 &&
      missing === 0 &&
      report.idle.closedOtherThan1012 === 0 &&
      steps.every((s) => s.exitCode === undefined || s.exitCode === 0);
    return report;
  } finally {
    for (const c of [...clients, ...idle]) c.close();
    await lb?.stop();
    await Promise.all([...running.values()].map((p) => p.kill('SIGKILL')));
  }
}

export function formatReport(r: DrillReport): string {
  const d = r.deliveries;
  const lines = [
    `Rolling deploy and scale-out drill: ${r.hubs}`,
    `${r.clients} chat sockets (SDK clients) checked frame by frame, ${r.idle.sockets} idle sockets; ${r.durationS} s`,
    ...r.steps.map(
      (s) =>
        `  ${s.step}: ${s.upMs !== undefined ? `up after ${s.upMs} ms; ` : ''}${s.drainMs !== undefined ? `drained and exited (${s.exitCode}) in ${s.drainMs} ms; ` : ''}sockets after: ${JSON.stringify(s.sockets ?? {})}`,
    ),
    `sends: ${r.sends.acked} acked, ${r.sends.failed} failed; ack latency p50 ${r.ackMs.p50} ms, p99 ${r.ackMs.p99} ms, max ${r.ackMs.max} ms`,
    `deliveries: ${d.received}/${d.expected} received; lost ${d.lost}, duplicated ${d.duplicated}, out of order ${d.outOfOrder}`,
    `stored: ${r.stored.messages} messages; acked but missing ${r.stored.missing}, stored twice ${r.stored.storedTwice}`,
    `reconnects: ${r.reconnects.count}; close to resumed p50 ${r.reconnects.p50} ms, p99 ${r.reconnects.p99} ms, max ${r.reconnects.max} ms`,
    `longest gap between two events at one receiver: ${r.longestGapMs} ms`,
    `close codes seen by clients: ${JSON.stringify(r.closeCodes)}${r.otherCloses.length ? ` (other than 1012: ${r.otherCloses.join('; ')})` : ''}`,
    `idle sockets: closed other than by a drain ${r.idle.closedOtherThan1012}; longest held ${r.idle.longestHeldS} s (HAProxy timeout client ${r.idle.lbTimeoutS.client} s, tunnel ${r.idle.lbTimeoutS.tunnel} s)`,
    r.ok ? 'PASS: no acked message lost, duplicated or reordered' : 'FAIL',
  ];
  return lines.join('\n');
}
