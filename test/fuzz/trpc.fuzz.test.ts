import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { AnyTRPCProcedure } from '@trpc/server';
import { appRouter } from '../../server/src/api/root.ts';
import { newUser, trpcClient, replicaPerSuite } from '../helpers/server.ts';
import { connect } from '../helpers/ws.ts';
import { metricValue, pingMs } from '../helpers/hardening.ts';
import { fuzzSettings, hostileValue } from './fuzz-seed.ts';

const PING_BOUND_MS = Number(process.env.FUZZ_PING_BOUND_MS ?? 1000);

/**
 * Every procedure of the router, found by walking it (so procedures merged later are fuzzed
 * too), with the field names of its zod input when it has an object input.
 */
function procedures() {
  const out: { path: string; type: 'query' | 'mutation'; fields: string[] }[] = [];
  for (const [path, p] of Object.entries(appRouter._def.procedures as unknown as Record<string, AnyTRPCProcedure>)) {
    const def = p._def as unknown as { type: string; inputs: unknown[] };
    if (def.type !== 'query' && def.type !== 'mutation') continue;
    const fields = new Set<string>();
    for (const schema of def.inputs) for (const k of Object.keys(shapeOf(schema))) fields.add(k);
    out.push({ path, type: def.type, fields: [...fields] });
  }
  return out;
}

function shapeOf(schema: unknown): Record<string, unknown> {
  const s = schema as {
    shape?: Record<string, unknown>;
    _zod?: { def?: { shape?: Record<string, unknown>; in?: unknown; innerType?: unknown } };
  };
  if (s?.shape && typeof s.shape === 'object') return s.shape;
  const def = s?._zod?.def;
  if (def?.shape) return def.shape;
  if (def?.in) return shapeOf(def.in);
  if (def?.innerType) return shapeOf(def.innerType);
  return {};
}

/** Session-ending procedures: after one of them the attacker logs in again. */
const ENDS_SESSION = new Set(['auth.logoutAll', 'auth.logout', 'account.delete', 'auth.changePassword']);

// Every tRPC procedure with generated valid, invalid and adversarial inputs, as a real caller.
// After each run: no INTERNAL (nor a 500), the hub alive, the victim's data unchanged, the
// attacker's own data unchanged when every call was refused, a healthy ping under a bound.
describe('fuzz: tRPC procedures', () => {
  const replica = replicaPerSuite('pglite', {
    LOGIN_MAX_PER_ACCOUNT: '1000',
    WS_RATE_PER_S: '1000',
    WS_RATE_BURST: '1000',
    API_RATE_PER_S: '100000',
    API_RATE_BURST: '100000',
    API_ANON_RATE_PER_S: '100000',
    API_ANON_RATE_BURST: '100000',
    API_HISTORY_ROWS_PER_S: '10000000',
    API_HISTORY_ROWS_BURST: '10000000',
  });

  test('every procedure: no INTERNAL, no 500, nothing of others changed, refused calls change nothing, pings bounded', async () => {
    const procs = procedures();
    assert.ok(procs.length >= 25, `${procs.length} procedures found`);
    const attacker = await newUser(replica.port, 'tz');
    const friend = await newUser(replica.port, 'tz');
    const victim = await newUser(replica.port, 'tz');
    const third = await newUser(replica.port, 'tz');
    const own = (await attacker.client.conversations.createGroup.mutate({ title: 'fuzz', memberIds: [friend.id] })).id;
    const foreign = (await victim.client.conversations.createGroup.mutate({ title: 'private', memberIds: [third.id] })).id;
    const victimState = async () =>
      JSON.stringify([
        await victim.client.auth.me.query(),
        await victim.client.conversations.get.query({ conversationId: foreign }),
        await victim.client.conversations.history.query({ conversationId: foreign }),
        await victim.client.profiles.blocked.query(),
      ]);
    const victimBefore = await victimState();
    let token = attacker.accessToken;
    const attackerState = async () =>
      JSON.stringify([
        await trpcClient(replica.port, token).auth.me.query(),
        await trpcClient(replica.port, token).conversations.list.query(),
      ]).replace(/"lastSeen":[^,}]*/g, '');
    const { c: healthy } = await connect(replica.port, friend.accessToken);

    const ids = [own, foreign, attacker.id, victim.id, friend.id];
    const v = hostileValue([...ids, victim.username, `${victim.username}@example.com`]);
    const inputFor = (fields: string[]) =>
      fc.oneof(
        // The procedure's own fields with plausible or hostile values, sometimes an unknown one.
        {
          weight: 5,
          arbitrary: fc
            .record(Object.fromEntries([...fields, 'isAdmin'].map((k) => [k, v])), { requiredKeys: [] })
            .map((o) => Object.fromEntries(Object.entries(o))),
        },
        {
          weight: 2,
          arbitrary: fc.record(
            Object.fromEntries(
              fields.map((k) => [
                k,
                fc.oneof(
                  fc.constantFrom(...ids),
                  fc.integer({ min: 0, max: 50 }),
                  fc.string({ minLength: 1, maxLength: 20 }),
                  fc.boolean(),
                ),
              ]),
            ),
            { requiredKeys: fields },
          ),
        },
        { weight: 1, arbitrary: v },
        { weight: 1, arbitrary: fc.constant(undefined) },
      );
    const call = fc.oneof(
      ...procs.map((p) =>
        fc.record({
          proc: fc.constant(p),
          input: inputFor(p.fields),
          auth: fc.constantFrom('attacker', 'attacker', 'attacker', 'none', 'garbage'),
        }),
      ),
    );

    const base = `http://127.0.0.1:${replica.port}/trpc/`;
    let cases = 0;
    let calls = 0;
    let maxPing = 0;
    const byCode = new Map<string, number>();
    const byProc = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(fc.array(call, { minLength: 1, maxLength: 12 }), async (batch) => {
        cases++;
        let pinging = true;
        const pinger = (async () => {
          while (pinging) {
            maxPing = Math.max(maxPing, await pingMs(healthy, PING_BOUND_MS * 3));
            await new Promise((r) => setTimeout(r, 20));
          }
        })();
        const ownBefore = await attackerState();
        let anyOk = false;
        for (const { proc, input, auth } of batch) {
          calls++;
          byProc.set(proc.path, (byProc.get(proc.path) ?? 0) + 1);
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (auth === 'attacker') headers.authorization = `Bearer ${token}`;
          if (auth === 'garbage') headers.authorization = 'Bearer x.y.z';
          const json = input === undefined ? undefined : JSON.stringify(input);
          const r =
            proc.type === 'query'
              ? await fetch(base + proc.path + (json === undefined ? '' : `?input=${encodeURIComponent(json)}`), { headers })
              : await fetch(base + proc.path, { method: 'POST', headers, body: json });
          const text = await r.text();
          assert.notEqual(r.status, 500, `${proc.path} ${json}: 500 ${text}`);
          let code = 'OK';
          if (r.status >= 400) {
            const body = JSON.parse(text) as { error?: { data?: { code?: string } } };
            code = body.error?.data?.code ?? `HTTP_${r.status}`;
          } else anyOk = true;
          byCode.set(code, (byCode.get(code) ?? 0) + 1);
          assert.notEqual(code, 'INTERNAL_SERVER_ERROR', `${proc.path} ${json}: ${text}`);
          if (code === 'OK' && ENDS_SESSION.has(proc.path)) anyOk = true;
        }
        // A session ended by a valid call (logoutAll): log in again for the next run.
        const me = await fetch(base + 'auth.me', { headers: { authorization: `Bearer ${token}` } });
        if (me.status === 401)
          token = (await trpcClient(replica.port).auth.login.mutate({ login: attacker.username, password: attacker.password })).accessToken;
        else if (!anyOk) assert.equal(await attackerState(), ownBefore, 'refused calls changed nothing of the caller');
        pinging = false;
        await pinger;
        assert.equal((await fetch(`http://127.0.0.1:${replica.port}/health`)).status, 200);
        assert.equal(await metricValue(replica.metricsPort, 'hubbub_ws_connections'), 1);
        assert.ok(maxPing < PING_BOUND_MS, `healthy ping ${maxPing.toFixed(1)} ms`);
      }),
      fuzzSettings('trpc procedures', 60),
    );
    assert.equal(await victimState(), victimBefore, "the victim's data is unchanged");
    const untouched = procs.filter((p) => !byProc.has(p.path)).map((p) => p.path);
    console.log(
      `[fuzz] trpc: ${procs.length} procedures, ${cases} cases, ${calls} calls, max healthy ping ${maxPing.toFixed(1)} ms, codes ${JSON.stringify(Object.fromEntries(byCode))}${untouched.length ? `, not reached: ${untouched.join(' ')}` : ''}`,
    );
    healthy.close();
  });
});
