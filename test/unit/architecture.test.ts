/**
 * Architecture check: no import cycle between the top-level folders of src/.
 *
 * Every src/**\/*.ts file is parsed with the TypeScript compiler (already a dev dependency) and each
 * relative module reference is collected: `import ... from`, `export ... from`, side-effect imports,
 * `import x = require()`, dynamic `import()` and type-level `import('...')`. Type-only imports count:
 * a type import is still a dependency in the design. Each file belongs to its top-level folder under
 * src/ (files directly in src/ belong to "(root)"). The test fails listing every cycle in the folder
 * graph with the file:line of each import that closes it, and prints the whole graph.
 */
import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SRC = path.join(ROOT, 'src');

interface Edge {
  from: string;
  to: string;
  /** "src/x/y.ts:12 imports '../z/w.js'" */
  sites: string[];
}

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listTs(p));
    else if (e.isFile() && e.name.endsWith('.ts')) out.push(p);
  }
  return out.sort();
}

function folderOf(file: string): string {
  const rel = path.relative(SRC, file).split(path.sep);
  return rel.length === 1 ? '(root)' : rel[0]!;
}

/** Relative module specifiers referenced by a file, with their 1-based line. */
function relativeImports(file: string): Array<{ spec: string; line: number }> {
  const text = fs.readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: Array<{ spec: string; line: number }> = [];
  const add = (node: ts.Node | undefined) => {
    if (node && ts.isStringLiteralLike(node) && node.text.startsWith('.')) {
      found.push({ spec: node.text, line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1 });
    }
  };
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node.arguments[0]);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

function resolveTarget(from: string, spec: string): string {
  const abs = path.resolve(path.dirname(from), spec);
  const candidates = [abs.replace(/\.js$/, '.ts'), abs, `${abs}.ts`, path.join(abs, 'index.ts')];
  return candidates.find((c) => fs.existsSync(c) && fs.statSync(c).isFile()) ?? abs;
}

function buildGraph(): Map<string, Map<string, Edge>> {
  const graph = new Map<string, Map<string, Edge>>();
  for (const file of listTs(SRC)) {
    const from = folderOf(file);
    if (!graph.has(from)) graph.set(from, new Map());
    for (const { spec, line } of relativeImports(file)) {
      const target = resolveTarget(file, spec);
      if (path.relative(SRC, target).startsWith('..')) continue; // outside src/
      const to = folderOf(target);
      if (to === from) continue;
      const edges = graph.get(from)!;
      if (!edges.has(to)) edges.set(to, { from, to, sites: [] });
      edges
        .get(to)!
        .sites.push(`src/${path.relative(SRC, file).split(path.sep).join('/')}:${line} imports '${spec}'`);
    }
  }
  return graph;
}

/** Elementary cycles of the folder graph, each as a list of folders starting at its smallest name. */
function findCycles(graph: Map<string, Map<string, Edge>>): string[][] {
  const nodes = [...graph.keys()].sort();
  const cycles: string[][] = [];
  // Each cycle is found once, from its smallest node, visiting only larger nodes.
  for (const start of nodes) {
    const walk = (node: string, trail: string[]) => {
      for (const next of [...(graph.get(node)?.keys() ?? [])].sort()) {
        if (next === start) cycles.push([...trail]);
        else if (next > start && !trail.includes(next)) walk(next, [...trail, next]);
      }
    };
    walk(start, [start]);
  }
  return cycles;
}

function describeGraph(graph: Map<string, Map<string, Edge>>): string {
  return [...graph.keys()]
    .sort()
    .map((f) => `  ${f} -> ${[...graph.get(f)!.keys()].sort().join(', ') || '(nothing)'}`)
    .join('\n');
}

describe('architecture', () => {
  it('has no import cycle between the top-level folders of src/', () => {
    const graph = buildGraph();
    const cycles = findCycles(graph);
    if (cycles.length === 0) return;
    // every edge that lies on some cycle, listed once with the imports that make it
    const onCycle = new Set<string>();
    for (const c of cycles) c.forEach((f, i) => onCycle.add(`${f}\u0000${c[(i + 1) % c.length]}`));
    const edges = [...onCycle].sort().map((k) => {
      const [from, to] = k.split('\u0000') as [string, string];
      return [
        `  ${from} -> ${to}:`,
        ...graph
          .get(from)!
          .get(to)!
          .sites.map((s) => `    ${s}`),
      ].join('\n');
    });
    throw new Error(
      [
        `${cycles.length} import cycle(s) between folders of src/:`,
        ...cycles.map((c) => `  ${[...c, c[0]].join(' -> ')}`),
        '',
        'imports on those cycles (move code so that one edge of each cycle goes away):',
        ...edges,
        '',
        'folder graph:',
        describeGraph(graph),
      ].join('\n'),
    );
  });

  it('sees type-only, re-export and dynamic imports (self-check of the parser)', () => {
    const graph = buildGraph();
    // the graph is not empty and main.ts depends on the CLI
    expect(graph.get('(root)')?.has('cli')).toBe(true);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'oauthmail-arch-'));
    try {
      const f = path.join(tmp, 'probe.ts');
      fs.writeFileSync(
        f,
        [
          "import type { A } from './a.js';",
          "export { B } from '../b.js';",
          "export * from './c.js';",
          "const d = await import('./d.js');",
          "type E = import('./e.js').E;",
          "import './f.js';",
          "// import { no } from './comment.js';",
          'const s = "import(\'./string.js\')";',
        ].join('\n'),
      );
      expect(relativeImports(f).map((i) => `${i.line}:${i.spec}`)).toEqual([
        '1:./a.js',
        '2:../b.js',
        '3:./c.js',
        '4:./d.js',
        '5:./e.js',
        '6:./f.js',
      ]);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
