// The shape of the code, checked: folders import each other in one direction only (no import circles between
// folders), the executor SDK and its plugins import nothing of the control plane, the vocabulary and the domain
// errors are leaves, and no production file grows past ~400 lines without saying why in its header.
// A "folder" is a part of the system: each folder of server/ and of executors/ (with its subfolders), and schema/,
// plugins/ and dashboards/ as wholes (a part's root composing its own subfolders is no circle). Inside a part, files
// may call each other both ways (the orchestrator's stages recurse: settling dispatches, dispatching settles).

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const MAX_LINES = 400;
/** A header line that gives a long file its reason, e.g. `// Long because: one state machine, read top to bottom.` */
const LONG_REASON = /^\/\/ Long because: \S/m;

const production = execFileSync(
  'git',
  ['ls-files', '--cached', '--others', '--exclude-standard', 'server', 'schema', 'plugins', 'executors', 'dashboards/src'],
  { cwd: root, encoding: 'utf8' },
)
  .split('\n')
  .filter((f) => /\.tsx?$/.test(f) && !/\.test\.tsx?$/.test(f) && !f.endsWith('.d.ts'));

function resolveImport(from: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  for (const candidate of [base, `${base}.ts`, `${base}.tsx`, `${base}/index.ts`, `${base}/index.tsx`]) {
    if (production.includes(candidate)) return candidate;
  }
  return base.replace(/\.js$/, '.ts');
}

const imports = new Map(
  production.map((file) => {
    const info = ts.preProcessFile(readFileSync(path.join(root, file), 'utf8'), true, true);
    return [file, info.importedFiles.map((i) => resolveImport(file, i.fileName)).filter((t): t is string => t !== null)] as const;
  }),
);

function folderOf(file: string): string {
  const parts = file.split('/');
  if (parts[0] === 'server' || parts[0] === 'executors') return parts.length > 2 ? parts.slice(0, 2).join('/') : parts[0];
  return parts[0]!;
}

/** Folder → folders it imports from, with the file pairs behind each edge (for the failure message). */
function folderGraph(): Map<string, Map<string, string[]>> {
  const graph = new Map<string, Map<string, string[]>>();
  for (const [file, targets] of imports) {
    for (const target of targets) {
      const [a, b] = [folderOf(file), folderOf(target)];
      if (a === b) continue;
      if (!graph.has(a)) graph.set(a, new Map());
      const edge = graph.get(a)!;
      edge.set(b, [...(edge.get(b) ?? []), `${file} → ${target}`]);
    }
  }
  return graph;
}

/** Strongly connected components of more than one folder (Tarjan). */
function circles(graph: Map<string, Map<string, string[]>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

const importsOutside = (folder: string, allowed: (target: string) => boolean) =>
  [...imports].filter(([file]) => file.startsWith(`${folder}/`)).flatMap(([file, targets]) => targets.filter((t) => !allowed(t)).map((t) => `${file} → ${t}`));

describe('the shape of the code', () => {
  it('reads every production file it checks', () => {
    expect(production.length).toBeGreaterThan(150);
    expect(production).toContain('server/app.ts');
  });

  it('has no import circles between folders', () => {
    const graph = folderGraph();
    const explained = circles(graph).map((component) =>
      component.flatMap((a) => component.filter((b) => graph.get(a)?.has(b)).map((b) => `${a} → ${b}: ${graph.get(a)!.get(b)!.join(', ')}`)),
    );
    expect(explained).toEqual([]);
  });

  it('finds a circle when there is one (the check can fail)', () => {
    const graph = new Map([
      ['a', new Map([['b', ['a/x.ts → b/y.ts']]])],
      ['b', new Map([['c', ['b/y.ts → c/z.ts']]])],
      ['c', new Map([['a', ['c/z.ts → a/x.ts']]])],
      ['d', new Map([['a', ['d/w.ts → a/x.ts']]])],
    ]);
    expect(circles(graph)).toEqual([['a', 'b', 'c']]);
  });

  it('keeps the executor SDK and the executors free of the control plane', () => {
    const offLimits = (t: string) => !/^(server|schema|dashboards)\//.test(t);
    expect([...importsOutside('plugins', offLimits), ...importsOutside('executors', offLimits)]).toEqual([]);
  });

  it('keeps the vocabulary and the domain errors leaves', () => {
    expect(importsOutside('server/vocabulary', (t) => t.startsWith('server/vocabulary/'))).toEqual([]);
    expect(importsOutside('server/errors', (t) => t.startsWith('server/errors/'))).toEqual([]);
  });

  it(`keeps production files under ${MAX_LINES} lines, or says why in the header`, () => {
    const long = production.filter((file) => {
      const source = readFileSync(path.join(root, file), 'utf8');
      const header = source.split('\n').slice(0, 12).join('\n');
      return source.split('\n').length > MAX_LINES && !LONG_REASON.test(header);
    });
    expect(long).toEqual([]);
  });

  it('names only paths that exist on the architecture page, and every folder of server/ on it', () => {
    const page = readFileSync(path.join(root, 'docs/architecture.md'), 'utf8');
    const named = [...page.matchAll(/`((?:server|schema|plugins|executors|dashboards|test)\/[^`\s]*)`/g)].map((m) => m[1]!.replace(/\/$/, ''));
    expect(named.length).toBeGreaterThan(40);
    expect(named.filter((p) => !existsSync(path.join(root, p)))).toEqual([]);
    const serverFolders = readdirSync(path.join(root, 'server'), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => `server/${d.name}`);
    expect(serverFolders.filter((folder) => !named.includes(folder))).toEqual([]);
  });
});
