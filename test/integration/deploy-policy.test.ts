import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../server/src/config.ts';
import pkg from '../../package.json' with { type: 'json' };

const root = path.resolve(import.meta.dirname, '..', '..');

function yamlDocs(file: string): any[] {
  const out = execFileSync(
    'python3',
    ['-c', 'import sys, yaml, json; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))', file],
    { encoding: 'utf8' },
  );
  return JSON.parse(out).filter(Boolean);
}
const k8s = readdirSync(path.join(root, 'k8s'))
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) => yamlDocs(path.join(root, 'k8s', f)));
const compose = yamlDocs(path.join(root, 'docker-compose.yml'))[0];

/**
 * Third-party images allowed in the deploy files: open-source licences only (no Redis past 7.2,
 * which is RSALv2/SSPL; no ScyllaDB, AGPL), each pinned to a major version.
 */
const allowed: [RegExp, string][] = [
  [/^postgres:15(\.\d+)?(-bookworm)?$/, 'PostgreSQL (PostgreSQL licence), the tests run 15'],
  [/^valkey\/valkey:\d+\.\d+(-bookworm)?$/, 'Valkey (BSD-3-Clause)'],
  [/^redis:7\.[0-2](\.\d+)?$/, 'Redis up to 7.2 (BSD-3-Clause)'],
  [/^cassandra:5\.0(\.\d+)?$/, 'Apache Cassandra 5.0 (Apache-2.0), as the tests run'],
  [/^haproxy:2\.\d+$/, 'HAProxy (GPL-2.0)'],
  [/^prom\/prometheus:v\d+\.\d+\.\d+$/, 'Prometheus (Apache-2.0)'],
  [/^chrislusf\/seaweedfs:\d+\.\d+$/, 'SeaweedFS (Apache-2.0), the S3 store the tests run (MinIO and Garage are AGPL)'],
];
const ours = `hubbub:${pkg.version}`;

test('compose and k8s use only open-source images, each pinned (ours to the package version, never latest)', () => {
  const images = [
    ...Object.values<any>(compose.services).map((s) => s.image as string),
    ...k8s.flatMap((d) => d.spec?.template?.spec?.containers?.map((c: any) => c.image as string) ?? []),
  ];
  assert.ok(images.length >= 9, images.join(', '));
  for (const image of images) {
    if (image === ours) continue;
    assert.ok(
      allowed.some(([re]) => re.test(image)),
      `${image} is not an allowed open-source image`,
    );
  }
  assert.ok(images.filter((i) => i === ours).length >= 5, `our image is ${ours}`);
});

test('compose: every service restarts and has a health check; hubs and workers wait for the stores they open; the balancer is the only port', () => {
  for (const [name, s] of Object.entries<any>(compose.services)) {
    assert.equal(s.restart, 'unless-stopped', `${name} restart`);
    // Hubs use the image's HEALTHCHECK (test:image runs it); the balancer is checked by its own checks of the hubs.
    if (!['hub1', 'hub2', 'lb'].includes(name)) assert.ok(s.healthcheck?.test, `${name} healthcheck`);
  }
  const storeOf = (env: any) =>
    [env.DATABASE_URL && 'postgres', env.REDIS_URL && 'valkey', env.MESSAGE_STORE === 'cassandra' && 'cassandra'].filter(Boolean);
  for (const name of ['hub1', 'hub2', 'workers']) {
    const s = compose.services[name];
    for (const dep of storeOf(s.environment)) assert.equal(s.depends_on?.[dep]?.condition, 'service_healthy', `${name} waits for ${dep}`);
    assert.match(s.environment.CASSANDRA_CONTACT_POINTS, /^cassandra:/);
    assert.match(s.environment.REDIS_URL, /^redis:\/\/valkey:/);
  }
  assert.deepEqual(
    Object.entries<any>(compose.services)
      .filter(([, s]) => s.ports)
      .map(([n]) => n),
    ['lb'],
  );
});

test('no JWT_SECRET default passes the production check: compose requires one, the k8s Secret leaves it empty', () => {
  const ref = compose['x-hub-env'].JWT_SECRET as string;
  assert.match(ref, /^\$\{JWT_SECRET:\?/, 'compose fails without JWT_SECRET');
  const secret = k8s.find((d) => d.kind === 'Secret' && d.metadata.name === 'hubbub-secrets');
  const env = { NODE_ENV: 'production', ...secret.stringData };
  assert.throws(() => loadConfig(env), /JWT_SECRET/);
});

test('k8s: pods run as the image user, non-root, read-only root, no privilege escalation, no capabilities; a NetworkPolicy admits only the ingress controller to the hubs', () => {
  const deployments = k8s.filter((d) => d.kind === 'Deployment');
  assert.deepEqual(deployments.map((d) => d.metadata.name).sort(), ['hubbub-hub', 'hubbub-workers']);
  for (const d of deployments) {
    const pod = d.spec.template.spec;
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.securityContext.runAsUser, 1000);
    assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
    assert.equal(pod.automountServiceAccountToken, false);
    for (const c of pod.containers) {
      assert.deepEqual(c.securityContext, {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      // The image's DATA_DIR and /tmp are the writable places.
      assert.deepEqual(c.volumeMounts.map((m: any) => m.mountPath).sort(), ['/data', '/tmp']);
    }
  }
  const policies = k8s.filter((d) => d.kind === 'NetworkPolicy');
  const hub = policies.find((p) => p.spec.podSelector.matchLabels.component === 'hub');
  const workers = policies.find((p) => p.spec.podSelector.matchLabels.component === 'workers');
  assert.ok(hub && workers);
  // From the ingress controller's namespace: the http port only, so nothing else a hub serves is reachable through it.
  const fromIngress = hub.spec.ingress.find((r: any) =>
    r.from.some((f: any) => f.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'ingress-nginx'),
  );
  assert.deepEqual(fromIngress.ports, [{ port: 'http', protocol: 'TCP' }]);
  for (const rule of [...hub.spec.ingress, ...workers.spec.ingress]) assert.ok(rule.from?.length, 'every ingress rule names its sources');
  // The Ingress routes only to the hub Service's http port.
  const ingress = k8s.find((d) => d.kind === 'Ingress');
  const backends = ingress.spec.rules.flatMap((r: any) => r.http.paths.map((p: any) => p.backend.service));
  assert.deepEqual(backends, [{ name: 'hubbub-hub', port: { name: 'http' } }]);
});
