import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../server/src/config.ts';
import { createMetrics } from '../../server/src/observability/metrics.ts';

const root = path.resolve(import.meta.dirname, '..', '..');

/**
 * No Docker engine or cluster here: these checks parse the deploy files and hold them to the
 * code (probe paths exist, metric names in rules and dashboard are ones the hub exports).
 */
function parseYamlDocs(file: string): any[] {
  const out = execFileSync(
    'python3',
    ['-c', 'import sys, yaml, json; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))', file],
    { encoding: 'utf8' },
  );
  return JSON.parse(out);
}

test('9 k8s manifests and docker-compose parse, probe the real health routes and use exported metric names', async () => {
  const k8s = path.join(root, 'k8s');
  const docs = readdirSync(k8s)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseYamlDocs(path.join(k8s, f)));
  const kinds = docs.map((d) => d.kind).sort();
  for (const k of [
    'ConfigMap',
    'Deployment',
    'HorizontalPodAutoscaler',
    'Ingress',
    'PodDisruptionBudget',
    'PrometheusRule',
    'Secret',
    'Service',
  ]) {
    assert.ok(kinds.includes(k), k);
  }
  const hub = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === 'hubbub-hub');
  const c = hub.spec.template.spec.containers[0];
  assert.equal(c.readinessProbe.httpGet.path, '/health/ready');
  assert.equal(c.livenessProbe.httpGet.path, '/health');
  assert.ok(c.lifecycle.preStop);
  const metrics = createMetrics();
  const defaultNames = new Set((await metrics.registry.getMetricsAsJSON()).map((x) => x.name));
  metrics.registry.clear();
  const metricsSrc = ['metrics.ts', 'notify-metrics.ts']
    .map((f) => readFileSync(path.join(root, 'server/src/observability', f), 'utf8'))
    .join('\n');
  const rules = JSON.stringify(docs.find((d) => d.kind === 'PrometheusRule'));
  const dashboard = readFileSync(path.join(k8s, 'grafana-dashboard.json'), 'utf8');
  JSON.parse(dashboard);
  for (const m of new Set(
    [...`${rules} ${dashboard}`.matchAll(/hubbub_[a-z0-9_]+/g)].map((x) => x[0].replace(/_(bucket|sum|count)$/, '')),
  )) {
    // prom-client's default metrics (process and Node.js) are named by the registry itself.
    assert.ok(defaultNames.has(m) || metricsSrc.includes(`'${m}'`), `${m} is exported by the hub`);
  }
  assert.match(
    rules,
    /HubbubNotificationFailuresGrowing.*hubbub_notify_queue_depth\{job=\\"hubbub-workers\\",state=\\"failed\\"\}/,
    'an alert on a growing failed set',
  );
  assert.match(dashboard, /hubbub_notify_queue_depth/, 'a notification queue panel');
  const [compose] = parseYamlDocs(path.join(root, 'docker-compose.yml'));
  for (const s of ['postgres', 'valkey', 'cassandra', 'hub1', 'hub2', 'workers', 'lb']) assert.ok(compose.services[s], s);
});

/** promtool, from Debian's prometheus package (.ci/run installs it): missing fails, never skips. */
function promtool(args: string[]): string {
  try {
    return execFileSync('promtool', args, {
      cwd: path.join(root, 'deploy/prometheus'),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') assert.fail("promtool is missing: install Debian's prometheus package (.ci/run does)");
    assert.fail(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

test('9 alert rules pass promtool tests (each alert firing and held back), select only scraped jobs, and metrics stay off the public port', () => {
  promtool(['check', 'config', 'prometheus.yml']);
  assert.match(promtool(['test', 'rules', 'rules.test.yml']), /SUCCESS/);

  const [plain] = parseYamlDocs(path.join(root, 'deploy/prometheus/rules.yml'));
  const k8sDocs = readdirSync(path.join(root, 'k8s'))
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseYamlDocs(path.join(root, 'k8s', f)));
  const of = (kind: string, name?: string) => k8sDocs.filter((d) => d.kind === kind && (!name || d.metadata.name === name));
  assert.deepEqual(of('PrometheusRule')[0].spec.groups, plain.groups, 'k8s/prometheus-rules.yaml holds deploy/prometheus/rules.yml');

  // Every alert has a rules test where it fires and one where it must not.
  const alerts: string[] = plain.groups.flatMap((g: any) => g.rules.map((r: any) => r.alert));
  const [tests] = parseYamlDocs(path.join(root, 'deploy/prometheus/rules.test.yml'));
  const cases = tests.tests.flatMap((t: any) => t.alert_rule_test ?? []);
  for (const a of alerts) {
    assert.ok(
      cases.some((c: any) => c.alertname === a && c.exp_alerts?.length > 0),
      `${a}: a test where it fires`,
    );
    assert.ok(
      cases.some((c: any) => c.alertname === a && (c.exp_alerts ?? []).length === 0),
      `${a}: a test where it does not`,
    );
  }

  // The jobs the rules select are the jobs scraped: in k8s a ServiceMonitor's job is the name of the
  // Service it selects (with the endpoint's port); in compose, the scrape config's job_name.
  const ruleJobs = new Set([...JSON.stringify(plain).matchAll(/job=\\"([^"\\]+)\\"/g)].map((m) => m[1]!));
  assert.deepEqual([...ruleJobs].sort(), ['hubbub-hub', 'hubbub-workers']);
  const k8sJobs = new Set<string>();
  for (const sm of of('ServiceMonitor')) {
    const want = sm.spec.selector.matchLabels as Record<string, string>;
    for (const svc of of('Service')) {
      const labels = (svc.metadata.labels ?? {}) as Record<string, string>;
      if (!Object.entries(want).every(([k, v]) => labels[k] === v)) continue;
      assert.ok(
        sm.spec.endpoints.every((e: any) => svc.spec.ports.some((p: any) => p.name === e.port)),
        `${svc.metadata.name} has the port ${sm.metadata.name} scrapes`,
      );
      k8sJobs.add(svc.metadata.name);
    }
  }
  assert.deepEqual([...k8sJobs].sort(), [...ruleJobs].sort(), 'k8s scrapes exactly the jobs the rules select');
  const [prom] = parseYamlDocs(path.join(root, 'deploy/prometheus/prometheus.yml'));
  const composeJobs = new Map<string, string[]>(
    prom.scrape_configs.map((c: any) => [c.job_name, c.static_configs.flatMap((s: any) => s.targets)]),
  );
  assert.deepEqual([...composeJobs.keys()].sort(), [...ruleJobs].sort(), 'compose scrapes exactly the jobs the rules select');

  // Ports: the defaults of the config schema, the containers' ports, the Services, compose's targets.
  const defaults = loadConfig({});
  const portOf = (deployment: string, name: string) =>
    of('Deployment', deployment)[0].spec.template.spec.containers[0].ports.find((p: any) => p.name === name)?.containerPort;
  assert.equal(portOf('hubbub-hub', 'http'), defaults.PORT);
  assert.equal(portOf('hubbub-hub', 'metrics'), defaults.METRICS_PORT);
  assert.equal(portOf('hubbub-workers', 'metrics'), defaults.WORKERS_METRICS_PORT);
  assert.notEqual(defaults.METRICS_PORT, defaults.PORT);
  assert.deepEqual(composeJobs.get('hubbub-hub'), [`hub1:${defaults.METRICS_PORT}`, `hub2:${defaults.METRICS_PORT}`]);
  assert.deepEqual(composeJobs.get('hubbub-workers'), [`workers:${defaults.WORKERS_METRICS_PORT}`]);
  const [compose] = parseYamlDocs(path.join(root, 'docker-compose.yml'));
  for (const t of [...composeJobs.values()].flat()) assert.ok(compose.services[t.split(':')[0]!], `${t} is a compose service`);
  assert.ok(compose.services.prometheus.volumes.some((v: string) => v.startsWith('./deploy/prometheus:')));
  // The public side never reaches a metrics port: the Ingress and HAProxy forward the public port only.
  for (const ing of of('Ingress')) {
    for (const r of ing.spec.rules) for (const p of r.http.paths) assert.equal(p.backend.service.port.name, 'http');
  }
  const hubSvc = of('Service', 'hubbub-hub')[0];
  assert.equal(hubSvc.spec.ports.find((p: any) => p.name === 'http').targetPort, 'http');
  const haproxy = readFileSync(path.join(root, 'deploy/haproxy.cfg'), 'utf8');
  assert.deepEqual(
    [...haproxy.matchAll(/^\s*server (hub\d) \S+:(\d+)/gm)].map((m) => Number(m[2])),
    [defaults.PORT, defaults.PORT],
  );
  // Pod annotations would make a second, differently named job: scraping is the ServiceMonitors' alone.
  for (const d of of('Deployment')) assert.ok(!JSON.stringify(d.spec.template.metadata).includes('prometheus.io'), d.metadata.name);
  // Only Prometheus's namespace reaches the metrics ports.
  for (const np of of('NetworkPolicy')) {
    for (const rule of np.spec.ingress) {
      if (rule.ports.some((p: any) => p.port === 'metrics')) assert.ok(rule.from?.length > 0, `${np.metadata.name}: metrics open to all`);
    }
  }
  assert.deepEqual(
    of('NetworkPolicy')
      .map((n) => n.metadata.name)
      .sort(),
    ['hubbub-hub', 'hubbub-workers'],
  );
});

/** Compose's interpolation of `${NAME}`, `${NAME:-default}` and `${NAME:?error}` from `vars`. */
function interpolate(value: string, vars: Record<string, string>): string {
  return value.replace(/\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}/g, (_m, name: string, op?: string, arg?: string) => {
    if (vars[name]) return vars[name];
    if (op === '?') throw new Error(`${name}: ${arg}`);
    return op === '-' ? (arg ?? '') : '';
  });
}

test('9 the S3 blob store settings of compose and k8s parse against the config schema and name one store', () => {
  const [compose] = parseYamlDocs(path.join(root, 'docker-compose.yml'));
  const secrets = { JWT_SECRET: 'x'.repeat(48), S3_SECRET_ACCESS_KEY: 's3-secret-for-the-test' };
  for (const name of ['hub1', 'hub2', 'workers']) {
    const raw = compose.services[name].environment as Record<string, string>;
    const env = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, interpolate(String(v), secrets)]));
    const config = loadConfig(env);
    assert.equal(config.S3_ENDPOINT, 'http://seaweedfs:8333', name);
    assert.equal(config.S3_SECRET_ACCESS_KEY, secrets.S3_SECRET_ACCESS_KEY, `${name} signs with the key compose was given`);
    assert.equal(compose.services[name].depends_on.seaweedfs?.condition, 'service_healthy', `${name} waits for the store`);
    // Browsers reach the store where the balancer listens, under the bucket's path.
    assert.equal(new URL(config.S3_PUBLIC_ENDPOINT!).port, compose.services.lb.ports[0].split(':')[0]);
    assert.ok(config.ALLOWED_ORIGINS.includes(new URL(config.S3_PUBLIC_ENDPOINT!).origin), 'the page and the store share an origin');
  }
  assert.throws(() => interpolate(String(compose['x-hub-env'].S3_SECRET_ACCESS_KEY), {}), /S3_SECRET_ACCESS_KEY/, 'no default secret');
  // SeaweedFS's one identity is written from the same variables the hubs read.
  const weed = compose.services.seaweedfs;
  assert.match(weed.image, /^chrislusf\/seaweedfs:\d+\.\d+$/);
  assert.deepEqual(Object.keys(weed.environment).sort(), ['S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY']);
  for (const k of Object.keys(weed.environment)) assert.equal(weed.environment[k], compose['x-hub-env'][k], k);
  assert.match(weed.command.join(' '), /-s3\.port=8333 -s3\.config=\/tmp\/s3\.json/);
  const haproxy = readFileSync(path.join(root, 'deploy/haproxy.cfg'), 'utf8');
  const bucket = compose['x-hub-env'].S3_BUCKET as string;
  assert.match(haproxy, new RegExp(`use_backend blobs if \\{ path_beg /${bucket}/ \\}`));
  assert.match(haproxy, /server-template seaweedfs 1 seaweedfs:8333/);

  // k8s: the ConfigMap names the store, the Secret holds its keys; both reach hubs and workers.
  const docs = readdirSync(path.join(root, 'k8s'))
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseYamlDocs(path.join(root, 'k8s', f)));
  const cm = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === 'hubbub-config');
  const secret = docs.find((d) => d.kind === 'Secret' && d.metadata.name === 'hubbub-secrets');
  const k8sConfig = loadConfig({ ...cm.data, ...secret.stringData, JWT_SECRET: secrets.JWT_SECRET });
  assert.ok(k8sConfig.S3_ENDPOINT && k8sConfig.S3_BUCKET && k8sConfig.S3_PUBLIC_ENDPOINT);
  assert.ok(!('S3_SECRET_ACCESS_KEY' in cm.data) && !('S3_ACCESS_KEY_ID' in cm.data), 'keys only in the Secret');
  assert.ok(secret.stringData.S3_SECRET_ACCESS_KEY && secret.stringData.S3_ACCESS_KEY_ID);
  for (const name of ['hubbub-hub', 'hubbub-workers']) {
    const c = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === name).spec.template.spec.containers[0];
    const from = (c.envFrom as any[]).map((e) => e.configMapRef?.name ?? e.secretRef?.name);
    assert.deepEqual(from.sort(), ['hubbub-config', 'hubbub-secrets'], name);
  }
});
