// Module references (`ns/name@tag|version`) resolved to the versions a plan pins: the reads of each module by its
// name, built once (server/db/prepared.ts) since every startRun makes them.
import { and, desc, eq, or, sql } from 'drizzle-orm';
import { arrayLiteral } from '../db/arrays';
import type { Tx } from '../db/client';
import { builtOnce } from '../db/prepared';
import { type ModuleVersion, modules, moduleTags, moduleVersions } from '../db/tables/modules';
import { closestName } from '../errors/did-you-mean';
import { parseModuleRef } from '../modules/ref';

export type ResolvedModule = ModuleVersion & { namespace: string; name: string };

// startRun's read of a module by its name, built once (server/db/prepared.ts): `wanted` is an array literal of the
// tags or versions asked for. One statement, not three (its row, its versions by tag, its versions by number): a
// row per version picked (by one of its tags, or by its number with no tag), and one with no version when none is;
// none when there is no such module. Each pick goes by its own index (module_tags' key, module_versions' by number).
type ModuleNamed = { namespace: string; name: string; wanted: string };
const moduleNamed = builtOnce<ModuleNamed>()((tx) => {
  const wanted = sql`${sql.placeholder('wanted')}::text[]`;
  const picked = tx
    .select({ tag: sql<string | null>`${moduleTags.tag}`.as('picked_tag'), versionId: sql<string>`${moduleTags.versionId}`.as('picked_version_id') })
    .from(moduleTags)
    .where(and(eq(moduleTags.moduleId, modules.id), sql`${moduleTags.tag} = any(${wanted})`))
    .unionAll(
      tx
        .select({ tag: sql<string | null>`null::text`.as('picked_tag'), versionId: sql<string>`${moduleVersions.id}`.as('picked_version_id') })
        .from(moduleVersions)
        .where(and(eq(moduleVersions.moduleId, modules.id), sql`${moduleVersions.version} = any(${wanted})`)),
    )
    .as('picked');
  return tx
    .select({ id: modules.id, tag: picked.tag, version: moduleVersions })
    .from(modules)
    .leftJoinLateral(picked, sql`true`)
    .leftJoin(moduleVersions, eq(moduleVersions.id, picked.versionId))
    .where(and(eq(modules.namespace, sql.placeholder('namespace')), eq(modules.name, sql.placeholder('name'))));
});

/** One module's reads: its row, and its versions by the tags and by the versions asked for. */
export type ModuleRead = {
  key: string;
  namespace: string;
  name: string;
  selectors: Set<string>;
  mod: { id: string } | undefined;
  tagRows: { tag: string; version: ModuleVersion }[];
  versionRows: ModuleVersion[];
};

/**
 * Module reads sent before the references are known for sure (startRun sends them with the workflow's read, for the
 * references its last start of that workflow resolved: server/orchestrator/start-guesses.ts). `resolveModuleRefs`
 * uses them only when it is asked for exactly the references they were sent for, and says which it was asked for.
 */
export interface ModuleReads {
  sent?: { refs: string; reads: Promise<ModuleRead[]> };
  /** The references resolveModuleRefs was asked for, once it has been. */
  asked?: string[];
  /** The reads it resolved them from, once it has, when every one resolved (what a later start may guess). */
  read?: ModuleRead[];
}

/** A set of references as one string: two sets are the same when their strings are. */
const refsKey = (refs: Iterable<string>) => [...new Set(refs)].sort().join('\n');

/** Each module's row and the versions its tags and numbers pick: a statement per module, all sent at once (one round trip). */
function readModules(tx: Tx, refs: Iterable<string>): Promise<ModuleRead[]> {
  const byModule = new Map<string, Set<string>>();
  for (const ref of refs) {
    const { namespace, name, selector } = parseModuleRef(ref);
    const key = `${namespace}/${name}`;
    if (!byModule.has(key)) byModule.set(key, new Set());
    byModule.get(key)!.add(selector);
  }
  const reads = [...byModule].map(async ([key, selectors]) => {
    const [namespace, name] = key.split('/') as [string, string];
    const values = { namespace, name, wanted: arrayLiteral([...selectors]) };
    const rows = await moduleNamed(tx, values);
    const tagRows: ModuleRead['tagRows'] = [];
    const versionRows: ModuleVersion[] = [];
    for (const { tag, version } of rows) {
      if (!version) continue;
      if (tag === null) versionRows.push(version);
      else tagRows.push({ tag, version });
    }
    return { key, namespace, name, selectors, mod: rows[0] && { id: rows[0].id }, tagRows, versionRows };
  });
  return Promise.all(reads);
}

/** Reads made before (by an earlier start), for `resolveModuleRefs` to use as they were if it is asked for the same references. */
export function guessedModuleReads(refs: string[], reads: ModuleRead[]): ModuleReads {
  return { sent: { refs: refsKey(refs), reads: Promise.resolve(reads) } };
}

/** Sends the reads that resolving `refs` makes, now: for `resolveModuleRefs` to use if it is asked for the same references. */
export function sendModuleReads(tx: Tx, refs: string[]): ModuleReads {
  const reads = readModules(tx, refs);
  reads.catch(() => undefined); // used or not: a failed read fails the transaction's later statements anyway
  return { sent: { refs: refsKey(refs), reads } };
}

/** Resolves `ns/name@tag|version` references: one query per distinct module, whatever the node count. */
export async function resolveModuleRefs(tx: Tx, refs: Iterable<string>, ahead?: ModuleReads): Promise<Map<string, ResolvedModule | string>> {
  const wanted = [...new Set(refs)];
  if (ahead) ahead.asked = wanted;
  const resolved = new Map<string, ResolvedModule | string>();
  const sent = ahead?.sent?.refs === refsKey(wanted) ? ahead.sent.reads : undefined;
  const reads = await (sent ?? readModules(tx, wanted));
  let complete = true;
  for (const { key, namespace, name, selectors, mod, tagRows, versionRows } of reads) {
    if (!mod) {
      complete = false;
      const problem = await unknownModule(tx, namespace, name);
      for (const s of selectors) resolved.set(`${key}@${s}`, problem);
      continue;
    }
    for (const selector of selectors) {
      const version = tagRows.find((r) => r.tag === selector)?.version ?? versionRows.find((v) => v.version === selector);
      if (!version) complete = false;
      resolved.set(`${key}@${selector}`, version ? { ...version, namespace, name } : await unknownSelector(tx, key, mod.id, selector));
    }
  }
  if (ahead && complete) ahead.read = reads;
  return resolved;
}

// The refusals below run only when a reference does not resolve: they say what the reference most likely meant, from
// the names every member may list (`atelier module list`, a module's tags), so a typo is fixed without a look-up.

/** `unknown module ns/nmae (did you mean "ns/name"?)`, from the modules of its namespace and those of its name. */
async function unknownModule(tx: Tx, namespace: string, name: string): Promise<string> {
  const near = await tx
    .select({ namespace: modules.namespace, name: modules.name })
    .from(modules)
    .where(or(eq(modules.namespace, namespace), eq(modules.name, name)))
    .limit(1000);
  const meant = closestName(
    `${namespace}/${name}`,
    near.map((m) => `${m.namespace}/${m.name}`),
  );
  const hint = meant ? ` (did you mean "${meant}"?)` : '';
  return `unknown module ${namespace}/${name}${hint}; publish it first with \`npx atelier module push DIR\`, or see the published ones with \`npx atelier module list\``;
}

/** `module ns/name has no tag or version "lates" (did you mean "latest"?; its tags: …, latest version …)`. */
async function unknownSelector(tx: Tx, key: string, moduleId: string, selector: string): Promise<string> {
  const [tags, [newest]] = await Promise.all([
    tx.select({ tag: moduleTags.tag }).from(moduleTags).where(eq(moduleTags.moduleId, moduleId)).orderBy(moduleTags.tag).limit(50),
    tx
      .select({ version: moduleVersions.version })
      .from(moduleVersions)
      .where(eq(moduleVersions.moduleId, moduleId))
      .orderBy(desc(moduleVersions.createdAt))
      .limit(1),
  ]);
  const names = tags.map((t) => t.tag);
  const meant = closestName(selector, names);
  const has = [names.length ? `its tags: ${names.join(', ')}` : 'no tags', newest ? `its newest version: ${newest.version}` : ''].filter(Boolean).join('; ');
  return `module ${key} has no tag or version "${selector}" (${meant ? `did you mean "${meant}"? ` : ''}${has})`;
}
