/**
 * Writes client/src/app-router.ts: the hub's `AppRouter` type as the SDK ships it, generated from
 * the server's router (server/src/api/root.ts) with the TypeScript compiler.
 *
 * Why not the server's own declarations: tRPC's inferred router type carries the server's context
 * (services, database, Redis, logger) and zod's types, so a client would need the server's source
 * and its dependencies' types to compile. Here every procedure's input and output types are
 * printed structurally, named types hoisted into aliases, and the router rebuilt from
 * `@trpc/server`'s public types with an empty context: what `createTRPCClient<AppRouter>` reads
 * (procedure kinds, inputs, outputs, the error shape) is the same, and the file imports nothing
 * but `@trpc/server` types.
 *
 * `npm run generate -w @hubbub/client` rewrites it; `--check` exits 1 when it is stale, and
 * client/test/app-router.test.ts does the same in CI.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');
export const outFile = path.join(repoRoot, 'client', 'src', 'app-router.ts');
const rootFile = path.join(repoRoot, 'server', 'src', 'api', 'root.ts');

const HEADER = `/**
 * The hub's tRPC router as clients see it. Generated from server/src/api/root.ts by
 * client/scripts/gen-app-router.ts: do not edit; \`npm run generate -w @hubbub/client\` rewrites it
 * and a test fails while it is stale. It imports only \`@trpc/server\`'s types, so a client project
 * compiles with neither the server's source nor its dependencies.
 */
`;

/** Prints types structurally, hoisting named (interface or alias) types into aliases by identity. */
class Printer {
  readonly aliases = new Map<ts.Type, { name: string; text?: string }>();
  private readonly taken = new Set<string>(['AppRouter', 'ErrorShape', 'Root']);
  /** Types being expanded now: one met again inside itself must be hoisted to be printable. */
  private readonly expanding = new Set<ts.Type>();

  constructor(
    private readonly checker: ts.TypeChecker,
    private readonly program: ts.Program,
  ) {}

  /** Registers `type` under a fixed alias name (printed on first use). */
  name(type: ts.Type, name: string) {
    this.aliases.set(type, { name });
  }

  print(type: ts.Type, indent = ''): string {
    const c = this.checker;
    const f = type.flags;
    if (f & ts.TypeFlags.Any) return 'any';
    if (f & ts.TypeFlags.Unknown) return 'unknown';
    if (f & ts.TypeFlags.Never) return 'never';
    if (f & ts.TypeFlags.Void) return 'void';
    if (f & ts.TypeFlags.Undefined) return 'undefined';
    if (f & ts.TypeFlags.Null) return 'null';
    if (f & ts.TypeFlags.StringLiteral) return JSON.stringify((type as ts.StringLiteralType).value);
    if (f & ts.TypeFlags.NumberLiteral) return String((type as ts.NumberLiteralType).value);
    if (f & ts.TypeFlags.BooleanLiteral) return (type as unknown as { intrinsicName: string }).intrinsicName;
    if (f & ts.TypeFlags.BigIntLiteral) {
      const v = (type as ts.BigIntLiteralType).value;
      return `${v.negative ? '-' : ''}${v.base10Value}n`;
    }
    if (f & ts.TypeFlags.TemplateLiteral) return c.typeToString(type, undefined, ts.TypeFormatFlags.NoTruncation);
    if (f & ts.TypeFlags.String) return 'string';
    if (f & ts.TypeFlags.Number) return 'number';
    if (f & ts.TypeFlags.Boolean) return 'boolean';
    if (f & ts.TypeFlags.BigInt) return 'bigint';
    if (f & ts.TypeFlags.ESSymbol) return 'symbol';
    if (f & ts.TypeFlags.NonPrimitive) return 'object';
    const hoisted = this.hoist(type);
    if (hoisted) return hoisted;
    return this.expand(type, indent);
  }

  /** A named, non-library type: printed once as an alias, referenced by name (also breaks recursion). */
  private hoist(type: ts.Type): string | null {
    const known = this.aliases.get(type);
    if (known) {
      if (known.text === undefined) {
        known.text = '';
        known.text = this.expand(type, '');
      }
      return known.name;
    }
    if (!(type.flags & (ts.TypeFlags.Object | ts.TypeFlags.Union | ts.TypeFlags.Intersection))) return null;
    const sym = type.aliasSymbol ?? type.getSymbol();
    const named = sym && !sym.name.startsWith('__') && !this.isLib(sym) && sym.name.replace(/^\$/, '').length > 2;
    // A one- or two-letter local name says nothing to a reader: inlined, unless it recurses.
    if (!named && !this.expanding.has(type)) return null;
    let base = (named ? sym.name : sym && !sym.name.startsWith('__') && !this.isLib(sym) ? sym.name : 'Recursive')
      .replace(/^\$/, '')
      .replace(/[^A-Za-z0-9_$]/g, '_');
    base = base[0]!.toUpperCase() + base.slice(1);
    let name = base;
    for (let i = 2; this.taken.has(name); i++) name = `${base}${i}`;
    this.taken.add(name);
    const entry: { name: string; text?: string } = { name, text: '' };
    this.aliases.set(type, entry);
    entry.text = this.expand(type, '');
    return name;
  }

  private isLib(sym: ts.Symbol) {
    return (sym.declarations ?? []).some((d) => this.program.isSourceFileDefaultLibrary(d.getSourceFile()));
  }

  private expand(type: ts.Type, indent: string): string {
    // An array or tuple recurses only through its element types, which are tracked themselves.
    if (this.checker.isArrayType(type) || this.checker.isTupleType(type)) return this.expandOnce(type, indent);
    this.expanding.add(type);
    try {
      return this.expandOnce(type, indent);
    } finally {
      this.expanding.delete(type);
    }
  }

  private expandOnce(type: ts.Type, indent: string): string {
    const c = this.checker;
    if (type.isUnion()) {
      let parts = type.types.map((t) => this.print(t, indent));
      // `true | false` is how the checker holds `boolean`.
      if (parts.includes('true') && parts.includes('false')) parts = [...parts.filter((p) => p !== 'true' && p !== 'false'), 'boolean'];
      // Sorted, so the file does not change when unrelated server code changes the checker's order.
      return parts
        .map((p) => (/=>/.test(p) ? `(${p})` : p))
        .sort()
        .join(' | ');
    }
    if (type.isIntersection()) return type.types.map((t) => this.wrap(this.print(t, indent))).join(' & ');
    if (!(type.flags & ts.TypeFlags.Object)) throw new Error(`cannot print type ${c.typeToString(type)}`);
    if (c.isArrayType(type)) {
      const elem = this.wrap(this.print(c.getTypeArguments(type as ts.TypeReference)[0]!, indent));
      return type.getSymbol()?.name === 'ReadonlyArray' ? `readonly ${elem}[]` : `${elem}[]`;
    }
    if (c.isTupleType(type)) {
      const ref = type as ts.TypeReference;
      const flags = (ref.target as ts.TupleType).elementFlags;
      const items = c.getTypeArguments(ref).map((t, i) => {
        const s = this.print(t, indent);
        const fl = flags[i]!;
        return fl & ts.ElementFlags.Rest ? `...${this.wrap(s)}[]` : fl & ts.ElementFlags.Optional ? `${this.wrap(s)}?` : s;
      });
      return `${(ref.target as ts.TupleType).readonly ? 'readonly ' : ''}[${items.join(', ')}]`;
    }
    const sym = type.getSymbol();
    if (sym && this.isLib(sym) && !sym.name.startsWith('__')) {
      // Date, Uint8Array, Map…: the consumer's lib has them.
      const args = (type as ts.TypeReference).target ? c.getTypeArguments(type as ts.TypeReference) : [];
      return args.length ? `${sym.name}<${args.map((a) => this.print(a, indent)).join(', ')}>` : sym.name;
    }
    if (c.getSignaturesOfType(type, ts.SignatureKind.Call).length || c.getSignaturesOfType(type, ts.SignatureKind.Construct).length) {
      throw new Error(`a function type in the API: ${c.typeToString(type)}`);
    }
    const inner = indent + '  ';
    const lines: string[] = [];
    for (const info of c.getIndexInfosOfType(type)) {
      lines.push(
        `${inner}${info.isReadonly ? 'readonly ' : ''}[key: ${this.print(info.keyType, inner)}]: ${this.print(info.type, inner)};`,
      );
    }
    for (const p of c.getPropertiesOfType(type)) {
      const optional = p.flags & ts.SymbolFlags.Optional ? '?' : '';
      const key = /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(p.name) ? p.name : JSON.stringify(p.name);
      lines.push(`${inner}${key}${optional}: ${this.print(c.getTypeOfSymbol(p), inner)};`);
    }
    return lines.length ? `{\n${lines.join('\n')}\n${indent}}` : '{}';
  }

  private wrap(s: string) {
    return /[|&]|=>/.test(s) && !/^[{[]/.test(s) ? `(${s})` : s;
  }
}

function prop(checker: ts.TypeChecker, type: ts.Type, name: string): ts.Type {
  const p = checker.getPropertyOfType(type, name);
  if (!p) throw new Error(`no property ${name} on ${checker.typeToString(type)}`);
  return checker.getTypeOfSymbol(p);
}

/** The text of client/src/app-router.ts for the router as it is now. */
export function generateAppRouter(): string {
  const configPath = path.join(repoRoot, 'tsconfig.json');
  const parsed = ts.getParsedCommandLineOfConfigFile(
    configPath,
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  );
  if (!parsed) throw new Error(`cannot read ${configPath}`);
  const program = ts.createProgram([rootFile], { ...parsed.options, noEmit: true });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(rootFile);
  if (!source) throw new Error(`cannot load ${rootFile}`);
  const moduleSym = checker.getSymbolAtLocation(source);
  const routerSym = moduleSym && checker.getExportsOfModule(moduleSym).find((s) => s.name === 'appRouter');
  if (!routerSym) throw new Error('server/src/api/root.ts exports no appRouter');
  const routerType = checker.getTypeOfSymbol(routerSym);
  const def = prop(checker, routerType, '_def');
  const rootTypes = prop(checker, prop(checker, def, '_config'), '$types');
  const printer = new Printer(checker, program);
  const errorShape = prop(checker, rootTypes, 'errorShape');
  printer.name(errorShape, 'ErrorShape');
  const meta = printer.print(prop(checker, rootTypes, 'meta'));
  const transformer = printer.print(prop(checker, rootTypes, 'transformer'));
  const used = new Set<string>();

  const record = (type: ts.Type, indent: string): string => {
    const inner = indent + '  ';
    const lines: string[] = [];
    for (const p of checker.getPropertiesOfType(type)) {
      const t = checker.getTypeOfSymbol(p);
      const pdef = checker.getPropertyOfType(t, '_def') && prop(checker, t, '_def');
      if (pdef && checker.getPropertyOfType(pdef, 'procedure')) {
        const kind = prop(checker, pdef, 'type');
        const k = kind.isStringLiteral() ? kind.value : '';
        const generic = { query: 'TRPCQueryProcedure', mutation: 'TRPCMutationProcedure', subscription: 'TRPCSubscriptionProcedure' }[k];
        if (!generic) throw new Error(`procedure ${p.name} has kind ${checker.typeToString(kind)}`);
        used.add(generic);
        const types = prop(checker, pdef, '$types');
        const body = [
          `${inner}  input: ${printer.print(prop(checker, types, 'input'), inner + '  ')};`,
          `${inner}  output: ${printer.print(prop(checker, types, 'output'), inner + '  ')};`,
          `${inner}  meta: ${printer.print(prop(checker, t, 'meta'), inner + '  ')};`,
          `${inner}  errorShape: ${printer.print(prop(checker, types, 'errorShape'), inner + '  ')};`,
        ];
        lines.push(`${inner}${p.name}: ${generic}<{\n${body.join('\n')}\n${inner}}>;`);
      } else {
        lines.push(`${inner}${p.name}: ${record(t, inner)};`);
      }
    }
    return `{\n${lines.join('\n')}\n${indent}}`;
  };
  const procedures = record(prop(checker, def, 'record'), '');
  // The error shape is printed once, as its own alias, even when no procedure names it.
  printer.print(errorShape);

  const aliases = [...printer.aliases.values()]
    .filter((a) => a.text !== undefined)
    .sort((a, b) => (a.name === 'ErrorShape' ? -1 : b.name === 'ErrorShape' ? 1 : a.name.localeCompare(b.name)))
    .map(
      (a) =>
        `${a.name === 'ErrorShape' ? '/** The `error.data`/shape of a failed call, as the hub formats it. */\nexport ' : ''}type ${a.name} = ${a.text};`,
    );
  const imports = ['TRPCBuiltRouter', ...[...used].sort()];
  return [
    HEADER,
    `import type { ${imports.join(', ')} } from '@trpc/server';`,
    '',
    `type Root = { ctx: object; meta: ${meta}; errorShape: ErrorShape; transformer: ${transformer} };`,
    '',
    `/** The hub's tRPC router type: \`createTRPCClient<AppRouter>(…)\`, or \`createApiClient\`. */`,
    `export type AppRouter = TRPCBuiltRouter<Root, ${procedures}>;`,
    '',
    ...aliases.flatMap((a) => [a, '']),
  ].join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const text = generateAppRouter();
  let current = '';
  try {
    current = readFileSync(outFile, 'utf8');
  } catch {
    // not generated yet
  }
  if (process.argv.includes('--check')) {
    if (current !== text) {
      process.stderr.write(`${path.relative(repoRoot, outFile)} is stale: run npm run generate -w @hubbub/client\n`);
      process.exit(1);
    }
    process.stderr.write(`${path.relative(repoRoot, outFile)} is current\n`);
  } else if (current !== text) {
    writeFileSync(outFile, text);
    process.stderr.write(`wrote ${path.relative(repoRoot, outFile)}\n`);
  }
}
