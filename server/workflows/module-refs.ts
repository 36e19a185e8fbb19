// Module references (`ns/name@tag|version`) resolved to the versions a plan pins: the reads of each module by its
// name, built once (server/db/prepared.ts) since every startRun makes them.
import { and, eq, sql } from 'drizzle-orm';
import { arrayLiteral } from '../db/arrays';
import type { Tx } from '../db/client';
import { builtOnce } from '../db/prepared';
import { type ModuleVersion, modules, moduleTags, moduleVersions } from '../db/tables/modules';
import { parseModuleRef } from '../modules/ref';

export type ResolvedModule = ModuleVersion & { namespace: string; name: string };

// startRun's reads of a module by its name, built once (server/db/prepared.ts): `wanted` is an array literal of the
// tags or versions asked for.
type ModuleNamed = { namespace: string; name: string; wanted: string };
const namedModule = () => and(eq(modules.namespace, sql.placeholder('namespace')), eq(modules.name, sql.placeholder('name')));
const moduleByName = builtOnce<ModuleNamed>()((tx) => tx.select({ id: modules.id }).from(modules).where(namedModule()));
const moduleTagsNamed = builtOnce<ModuleNamed>()((tx) =>
  tx
    .select({ tag: moduleTags.tag, version: moduleVersions })
    .from(moduleTags)
    .innerJoin(moduleVersions, eq(moduleVersions.id, moduleTags.versionId))
    .innerJoin(modules, eq(modules.id, moduleTags.moduleId))
    .where(and(namedModule(), sql`${moduleTags.tag} = any(${sql.placeholder('wanted')}::text[])`)),
);
const moduleVersionsNamed = builtOnce<ModuleNamed>()((tx) =>
  tx
    .select({ version: moduleVersions })
    .from(moduleVersions)
    .innerJoin(modules, eq(modules.id, moduleVersions.moduleId))
    .where(and(namedModule(), sql`${moduleVersions.version} = any(${sql.placeholder('wanted')}::text[])`)),
);

/** Resolves `ns/name@tag|version` references: one query per distinct module, whatever the node count. */
export async function resolveModuleRefs(tx: Tx, refs: Iterable<string>): Promise<Map<string, ResolvedModule | string>> {
  const byModule = new Map<string, Set<string>>();
  for (const ref of refs) {
    const { namespace, name, selector } = parseModuleRef(ref);
    const key = `${namespace}/${name}`;
    if (!byModule.has(key)) byModule.set(key, new Set());
    byModule.get(key)!.add(selector);
  }
  const resolved = new Map<string, ResolvedModule | string>();
  // Each module's row, its tags and its versions are independent reads by its name: all of them, for every module, are
  // sent at once (one round trip on the transaction's connection, not three per module).
  const reads = [...byModule].map(async ([key, selectors]) => {
    const [namespace, name] = key.split('/') as [string, string];
    const values = { namespace, name, wanted: arrayLiteral([...selectors]) };
    const [[mod], tagRows, versionRows] = await Promise.all([moduleByName(tx, values), moduleTagsNamed(tx, values), moduleVersionsNamed(tx, values)]);
    return { key, namespace, name, selectors, mod, tagRows, versionRows: versionRows.map((r) => r.version) };
  });
  for (const { key, namespace, name, selectors, mod, tagRows, versionRows } of await Promise.all(reads)) {
    if (!mod) {
      for (const s of selectors) resolved.set(`${key}@${s}`, `unknown module ${key}; publish it first with \`npx atelier module push DIR\``);
      continue;
    }
    for (const selector of selectors) {
      const version = tagRows.find((r) => r.tag === selector)?.version ?? versionRows.find((v) => v.version === selector);
      resolved.set(`${key}@${selector}`, version ? { ...version, namespace, name } : `module ${key} has no tag or version "${selector}"`);
    }
  }
  return resolved;
}
