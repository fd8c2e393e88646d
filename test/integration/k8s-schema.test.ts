import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { k8sVersion, loadSchemas, readYaml, validateDocs, validateFiles, type Schemas } from '../../scripts/k8s-validate.ts';

const root = path.resolve(import.meta.dirname, '..', '..');
let schemas: Schemas;

before(() => {
  // Fetched once into .cache (go mod download of k8s.io/kubernetes; Go is installed for stripe-mock).
  execFileSync('bash', [path.join(root, 'scripts/fetch-k8s-openapi.sh')], { stdio: 'inherit' });
  schemas = loadSchemas();
});

test(`every manifest in k8s/ is valid against the Kubernetes ${k8sVersion} OpenAPI schemas (strict: unknown fields are errors); only the prometheus-operator CRDs (PrometheusRule, ServiceMonitor) are not covered`, () => {
  const files = readdirSync(path.join(root, 'k8s'))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => path.join(root, 'k8s', f));
  const results = validateFiles(files, schemas);
  assert.deepEqual(
    results.filter((r) => r.errors?.length),
    [],
  );
  assert.deepEqual([...new Set(results.filter((r) => r.errors === null).map((r) => r.kind))].sort(), ['PrometheusRule', 'ServiceMonitor']);
  assert.ok(results.filter((r) => r.errors?.length === 0).length >= 10);
});

test('the validator catches what the API server would refuse: a misspelt field, a wrong type, a bad quantity, a missing required field, a duplicate port (enums are not in the published schemas: the API server checks them)', () => {
  const [deployment] = readYaml(path.join(root, 'k8s', 'hub.yaml'));
  const broken = structuredClone(deployment!);
  const c = broken.spec.template.spec.containers[0];
  c.securityContext.runAsNonroot = true;
  broken.spec.replicas = '2';
  c.resources.requests.cpu = true;
  delete broken.spec.selector;
  c.ports.push({ ...c.ports[0] });
  const [r] = validateDocs('hub.yaml', [broken], schemas);
  const errors = r!.errors!.join('\n');
  assert.match(errors, /securityContext\.runAsNonroot: unknown field/);
  assert.match(errors, /spec\.replicas: expected an integer/);
  assert.match(errors, /requests\.cpu: .*fits none of/);
  assert.match(errors, /spec\.selector: required/);
  assert.match(errors, /ports: two entries/);
  assert.equal(r!.errors!.length, 5, errors);
});
