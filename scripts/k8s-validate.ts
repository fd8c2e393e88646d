/**
 * Validates the manifests in k8s/ against the Kubernetes API's own OpenAPI v3 schemas for one
 * release (scripts/fetch-k8s-openapi.sh puts them in .cache/k8s-openapi/<version>/), strictly:
 * an unknown field is an error, as with `kubectl apply --validate=strict`, as are a wrong type,
 * a missing required field, a value outside an enum and two list entries with the same key.
 *
 *   node --import tsx scripts/k8s-validate.ts [files…]     (default: every k8s/*.yaml)
 *
 * Kinds the Kubernetes API does not define (PrometheusRule, a prometheus-operator CRD) are
 * reported as not validated. YAML is read with Python's PyYAML, as the deploy-file tests do.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const k8sVersion = process.env.K8S_VERSION ?? 'v1.34.4';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

type Schema = {
  $ref?: string;
  allOf?: Schema[];
  oneOf?: Schema[];
  type?: string;
  format?: string;
  enum?: unknown[];
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  required?: string[];
  items?: Schema;
  nullable?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-group-version-kind'?: { group: string; version: string; kind: string }[];
};

export interface Schemas {
  byName: Map<string, Schema>;
  /** `apiVersion/kind` → schema name. */
  byKind: Map<string, string>;
}

export function loadSchemas(dir = path.join(root, '.cache', 'k8s-openapi', k8sVersion)): Schemas {
  const byName = new Map<string, Schema>();
  const byKind = new Map<string, string>();
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.json'))) {
    const doc = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as { components?: { schemas?: Record<string, Schema> } };
    for (const [name, s] of Object.entries(doc.components?.schemas ?? {})) {
      byName.set(name, s);
      for (const g of s['x-kubernetes-group-version-kind'] ?? []) byKind.set(`${g.group ? `${g.group}/` : ''}${g.version}/${g.kind}`, name);
    }
  }
  if (!byKind.size) throw new Error(`no schemas in ${dir}: run scripts/fetch-k8s-openapi.sh`);
  return { byName, byKind };
}

/** Every error in `value` against `schema`, each with its path. */
function check(value: unknown, schema: Schema, at: string, s: Schemas, errors: string[]): void {
  if (schema.$ref) {
    check(value, s.byName.get(schema.$ref.replace('#/components/schemas/', ''))!, at, s, errors);
    return;
  }
  for (const sub of schema.allOf ?? []) check(value, sub, at, s, errors);
  if (value === null || value === undefined) {
    if (!schema.nullable && (schema.type || schema.properties)) errors.push(`${at}: null`);
    return;
  }
  if (schema.oneOf) {
    const fits = schema.oneOf.some((sub) => {
      const e: string[] = [];
      check(value, sub, at, s, e);
      return e.length === 0;
    });
    if (!fits) errors.push(`${at}: ${JSON.stringify(value)} fits none of ${schema.oneOf.map((x) => x.type).join(', ')}`);
    return;
  }
  if (schema['x-kubernetes-int-or-string']) {
    if (typeof value !== 'string' && !Number.isInteger(value)) errors.push(`${at}: expected an integer or a string`);
    return;
  }
  if (schema.enum && !schema.enum.includes(value)) errors.push(`${at}: ${JSON.stringify(value)} is not one of ${schema.enum.join(', ')}`);
  switch (schema.type) {
    case 'string':
      if (typeof value !== 'string') errors.push(`${at}: expected a string, got ${JSON.stringify(value)}`);
      return;
    case 'integer':
      if (!Number.isInteger(value)) errors.push(`${at}: expected an integer, got ${JSON.stringify(value)}`);
      return;
    case 'number':
      if (typeof value !== 'number') errors.push(`${at}: expected a number, got ${JSON.stringify(value)}`);
      return;
    case 'boolean':
      if (typeof value !== 'boolean') errors.push(`${at}: expected a boolean, got ${JSON.stringify(value)}`);
      return;
    case 'array': {
      if (!Array.isArray(value)) return void errors.push(`${at}: expected a list`);
      value.forEach((v, i) => schema.items && check(v, schema.items, `${at}[${i}]`, s, errors));
      const keys = schema['x-kubernetes-list-map-keys'];
      if (schema['x-kubernetes-list-type'] === 'map' && keys) {
        const seen = new Set<string>();
        for (const v of value as Record<string, unknown>[]) {
          const k = JSON.stringify(keys.map((key) => v?.[key]));
          if (seen.has(k)) errors.push(`${at}: two entries with ${keys.join('+')} = ${k}`);
          seen.add(k);
        }
      }
      return;
    }
  }
  if (schema.type === 'object' || schema.properties || schema.additionalProperties) {
    if (typeof value !== 'object' || Array.isArray(value)) return void errors.push(`${at}: expected an object`);
    const obj = value as Record<string, unknown>;
    for (const r of schema.required ?? []) if (!(r in obj)) errors.push(`${at}.${r}: required`);
    for (const [k, v] of Object.entries(obj)) {
      const p = schema.properties?.[k];
      if (p) check(v, p, `${at}.${k}`, s, errors);
      else if (typeof schema.additionalProperties === 'object') check(v, schema.additionalProperties, `${at}.${k}`, s, errors);
      else if (!schema.additionalProperties && !schema['x-kubernetes-preserve-unknown-fields']) errors.push(`${at}.${k}: unknown field`);
    }
  }
}

export interface Result {
  file: string;
  kind: string;
  name: string;
  /** null: a kind the Kubernetes API does not define (not validated). */
  errors: string[] | null;
}

export function validateDocs(file: string, docs: Record<string, any>[], s: Schemas): Result[] {
  return docs.map((d) => {
    const name = d?.metadata?.name ?? '?';
    const schemaName = s.byKind.get(`${d.apiVersion}/${d.kind}`);
    if (!schemaName) return { file, kind: d.kind, name, errors: null };
    const errors: string[] = [];
    check(d, s.byName.get(schemaName)!, d.kind, s, errors);
    if (!d.metadata?.name) errors.push(`${d.kind}.metadata.name: required`);
    return { file, kind: d.kind, name, errors };
  });
}

export function readYaml(file: string): Record<string, any>[] {
  const out = execFileSync(
    'python3',
    ['-c', 'import sys, yaml, json; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))', file],
    { encoding: 'utf8' },
  );
  return JSON.parse(out);
}

export function validateFiles(files: string[], s = loadSchemas()): Result[] {
  return files.flatMap((f) => validateDocs(path.relative(root, f), readYaml(f), s));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const files = args.length
    ? args
    : readdirSync(path.join(root, 'k8s'))
        .filter((f) => f.endsWith('.yaml'))
        .map((f) => path.join(root, 'k8s', f));
  const results = validateFiles(files);
  for (const r of results) {
    const what = `${r.file}: ${r.kind} ${r.name}`;
    if (r.errors === null) console.log(`${what}: not a Kubernetes ${k8sVersion} API kind, not validated`);
    else if (!r.errors.length) console.log(`${what}: valid against Kubernetes ${k8sVersion}`);
    else for (const e of r.errors) console.log(`${what}: ${e}`);
  }
  process.exit(results.some((r) => r.errors?.length) ? 1 : 0);
}
