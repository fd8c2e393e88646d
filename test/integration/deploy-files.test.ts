import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { createMetrics } from '../../server/src/observability/metrics.ts';

const root = path.resolve(import.meta.dirname, '..', '..');

/**
 * No Docker engine or cluster here: these checks parse the deploy files and hold them to the
 * code (probe paths exist, metric names in rules and dashboard are ones the hub exports).
 */
function parseYamlDocs(file: string): any[] {
  const out = execFileSync('python3', ['-c', 'import sys, yaml, json; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))', file], { encoding: 'utf8' });
  return JSON.parse(out);
}

test('9 k8s manifests and docker-compose parse, probe the real health routes and use exported metric names', async () => {
  const k8s = path.join(root, 'k8s');
  const docs = readdirSync(k8s)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseYamlDocs(path.join(k8s, f)));
  const kinds = docs.map((d) => d.kind).sort();
  for (const k of ['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Ingress', 'PodDisruptionBudget', 'PrometheusRule', 'Secret', 'Service']) {
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
  const metricsSrc = ['metrics.ts', 'notify-metrics.ts'].map((f) => readFileSync(path.join(root, 'server/src/observability', f), 'utf8')).join('\n');
  const rules = JSON.stringify(docs.find((d) => d.kind === 'PrometheusRule'));
  const dashboard = readFileSync(path.join(k8s, 'grafana-dashboard.json'), 'utf8');
  JSON.parse(dashboard);
  for (const m of new Set([...`${rules} ${dashboard}`.matchAll(/hubbub_[a-z0-9_]+/g)].map((x) => x[0].replace(/_(bucket|sum|count)$/, '')))) {
    // prom-client's default metrics (process and Node.js) are named by the registry itself.
    assert.ok(defaultNames.has(m) || metricsSrc.includes(`'${m}'`), `${m} is exported by the hub`);
  }
  assert.match(rules, /HubbubNotificationFailuresGrowing.*hubbub_notify_queue_depth\{state=\\"failed\\"\}/, 'an alert on a growing failed set');
  assert.match(dashboard, /hubbub_notify_queue_depth/, 'a notification queue panel');
  const [compose] = parseYamlDocs(path.join(root, 'docker-compose.yml'));
  for (const s of ['postgres', 'valkey', 'cassandra', 'hub1', 'hub2', 'workers', 'lb']) assert.ok(compose.services[s], s);
});
