/**
 * `npm run test:image`: builds the image (scripts/image.sh, podman) and runs it as an operator
 * would, in its embedded default: no database, Redis or Cassandra, only JWT_SECRET and a volume
 * for DATA_DIR. Not part of `npm test` (it needs root, podman and a few minutes for a cold build);
 * `.ci/run` runs it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { buildImage, healthcheck, podman, runArgs, runContainer } from '../helpers/podman.ts';
import { freePort } from '../helpers/ports.ts';
import { startRedis, type RedisHandle } from '../helpers/redis.ts';
import { newUser, trpcClient } from '../helpers/server.ts';
import { connect } from '../helpers/ws.ts';
import pkg from '../../package.json' with { type: 'json' };

const id = `${process.pid}-${randomBytes(3).toString('hex')}`;
const volume = `hubbub-image-test-${id}`;
const jwtSecret = randomBytes(36).toString('base64url');
let image = '';
let redis: RedisHandle | undefined;

before(async () => {
  const t0 = Date.now();
  // HUBBUB_IMAGE_ARGS: scripts/image.sh's options for a variant (e.g. `--node 22`); HUBBUB_IMAGE: an image already built.
  image = process.env.HUBBUB_IMAGE || (await buildImage(process.env.HUBBUB_IMAGE_ARGS?.split(' ').filter(Boolean)));
  process.stderr.write(`image ${image} ready in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  await podman('volume', 'create', volume);
});
after(async () => {
  await podman('volume', 'rm', '-f', volume).catch((err) => process.stderr.write(`volume rm: ${err}\n`));
  await redis?.stop();
});

test('the image: multi-stage runtime with production dependencies only, non-root, HEALTHCHECK, OCI labels', async () => {
  const [info] = JSON.parse(await podman('image', 'inspect', image)) as any[];
  const labels = info.Labels as Record<string, string>;
  assert.equal(labels['org.opencontainers.image.version'], pkg.version);
  assert.equal(labels['org.opencontainers.image.licenses'], (pkg as { license?: string }).license ?? 'NOASSERTION');
  assert.equal(info.Config.User, 'node');
  assert.deepEqual(info.Healthcheck.Test.slice(0, 2), ['CMD', 'node']);
  assert.match(info.Healthcheck.Test[3], /\/health\/ready/);
  assert.equal(
    info.Config.Env.find((e: string) => e.startsWith('NODE_ENV=')),
    'NODE_ENV=production',
  );
  const listing = await podman(
    'run',
    '--rm',
    ...runArgs,
    '--entrypoint',
    'sh',
    image,
    '-c',
    'ls /app/node_modules /app/node_modules/.bin; ls /app; find /app/node_modules/uWebSockets.js -name "uws_*.node" -printf "%f\\n"; node -p process.versions.modules',
  );
  for (const dev of ['tsx', 'esbuild', 'typescript', 'drizzle-kit', 'puppeteer-core'])
    assert.ok(!listing.split('\n').includes(dev), `${dev} is not in the runtime`);
  for (const dir of ['dist', 'node_modules', 'web', 'db']) assert.ok(listing.split('\n').includes(dir), dir);
  // One uWebSockets.js binary: the one for this Node.js.
  const abi = listing.split('\n').at(-1);
  assert.deepEqual(
    listing.split('\n').filter((l) => l.startsWith('uws_')),
    [`uws_linux_x64_${abi}.node`],
  );
  const mb = Number(info.Size) / 1e6;
  process.stderr.write(`image size ${mb.toFixed(0)} MB\n`);
  assert.ok(mb < 400, `image ${mb.toFixed(0)} MB`);
});

test('the image refuses to start in production without JWT_SECRET, naming the variable', async () => {
  const c = runContainer(image, `hubbub-nosecret-${id}`, { env: { PORT: String(await freePort()) } });
  try {
    assert.equal(await c.exited, 78);
    assert.ok(
      c.logs.some((l) => /JWT_SECRET.*required when NODE_ENV=production/.test(l)),
      c.logs.join('\n'),
    );
  } finally {
    await c.remove();
  }
});

/** As k8s/ runs it: read-only root, /tmp a tmpfs, no capabilities, no privilege escalation. */
const hardened = ['--read-only', '--tmpfs', '/tmp', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges'];

test('the embedded default in the image, hardened as k8s/ runs it: healthy, sign up, chat over the socket, SIGTERM drains with 1012, data kept on the volume', async () => {
  const port = await freePort();
  const env = { PORT: String(port), HOST: '127.0.0.1', JWT_SECRET: jwtSecret };
  let c = runContainer(image, `hubbub-hub-${id}`, { env, volumes: [`${volume}:/data`], args: hardened });
  let conv = '';
  let alice: Awaited<ReturnType<typeof newUser>>;
  try {
    const listening = await c.waitFor('hub listening');
    assert.equal(listening.db, 'pglite');
    assert.equal(await healthcheck(c.name), 'healthy');
    alice = await newUser(port, 'alice');
    const bob = await newUser(port, 'bob');
    conv = (await alice.client.conversations.createDirect.mutate({ userId: bob.id })).id;
    const a = await connect(port, alice.accessToken);
    const b = await connect(port, bob.accessToken);
    const ack = await a.c.request({ type: 'send', conv, cid: 'c1', body: 'hello from the image' });
    assert.equal(ack.type, 'ack');
    const ev = await b.c.next((f) => f.type === 'event' && f.conv === conv);
    assert.equal(ev.body, 'hello from the image');
    assert.equal(ev.seq, ack.seq);
    // The embedded database is on the volume, written by the unprivileged user.
    assert.match(await podman('exec', c.name, 'sh', '-c', 'stat -c %U /data/pglite && id -un'), /^node\nnode$/);

    await c.signal('SIGTERM');
    const [ca, cb] = await Promise.all([a.c.closed, b.c.closed]);
    assert.equal(ca.code, 1012);
    assert.equal(cb.code, 1012);
    assert.equal(await c.exited, 0);
    assert.ok(c.messages.includes('draining') && c.messages.includes('drained, exiting'), c.messages.join(', '));
  } finally {
    await c.remove();
  }

  // A new container on the same volume: the account and the message are still there.
  c = runContainer(image, `hubbub-hub2-${id}`, { env, volumes: [`${volume}:/data`], args: hardened });
  try {
    await c.waitFor('hub listening');
    const login = await trpcClient(port).auth.login.mutate({ login: alice!.username, password: alice!.password });
    const history = await trpcClient(port, login.accessToken).conversations.history.query({ conversationId: conv });
    assert.deepEqual(
      history.events.filter((e) => e.kind === 'message').map((e) => (e as { body?: string }).body),
      ['hello from the image'],
    );
    await c.signal('SIGTERM');
    assert.equal(await c.exited, 0);
  } finally {
    await c.remove();
  }
});

test('the workers in the image (hardened, embedded database in an anonymous volume) start on Redis and answer /health from their checks', async () => {
  redis = await startRedis();
  const metricsPort = await freePort();
  const c = runContainer(image, `hubbub-workers-${id}`, {
    env: { HOST: '127.0.0.1', REDIS_URL: redis.url, JWT_SECRET: jwtSecret, WORKERS_METRICS_PORT: String(metricsPort) },
    command: ['node', 'dist/workers/main.js'],
    args: hardened,
  });
  try {
    await c.waitFor('workers started');
    const res = await fetch(`http://127.0.0.1:${metricsPort}/health`);
    assert.deepEqual(
      { status: res.status, body: await res.json() },
      { status: 200, body: { status: 'ok', checks: { database: 'ok', store: 'ok', redis: 'ok' } } },
    );
    await c.signal('SIGTERM');
    assert.equal(await c.exited, 0);
  } finally {
    await c.remove();
  }
});
