// Reads of the module catalog for the API: modules and versions by id, each module's tags, versions and tag
// history, version usage by runs, the catalog list, and resolving a reference as a run starting now would.
import { and, asc, desc, eq, exists, ilike, inArray, or, sql } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import {
  type Module,
  type ModuleTag,
  type ModuleTagEvent,
  type ModuleVersion,
  modules,
  moduleTagEvents,
  moduleTags,
  moduleVersions,
  moduleVersionUsage,
} from '../db/tables/modules';
import { type Run, runs, tasks } from '../db/tables/runs';

export const modulesByIds = (db: Db, ids: string[]): Promise<Module[]> => db.select().from(modules).where(inArray(modules.id, ids));

export const moduleVersionsByIds = (db: Db, ids: string[]): Promise<ModuleVersion[]> => db.select().from(moduleVersions).where(inArray(moduleVersions.id, ids));

/** The tags of each module, by tag name. */
export const tagsOfModules = (db: Db, moduleIds: string[]): Promise<ModuleTag[]> =>
  db.select().from(moduleTags).where(inArray(moduleTags.moduleId, moduleIds)).orderBy(asc(moduleTags.tag));

/** The versions of each module, newest first. */
export const versionsOfModules = (db: Db, moduleIds: string[]): Promise<ModuleVersion[]> =>
  db.select().from(moduleVersions).where(inArray(moduleVersions.moduleId, moduleIds)).orderBy(desc(moduleVersions.createdAt));

/** The tag moves of each module, newest first. */
export const tagEventsOfModules = (db: Db, moduleIds: string[]): Promise<ModuleTagEvent[]> =>
  db.select().from(moduleTagEvents).where(inArray(moduleTagEvents.moduleId, moduleIds)).orderBy(desc(moduleTagEvents.createdAt));

export interface VersionUsage {
  runs: number;
  lastUsedAt: Date | null;
}

/** How many runs used each module version, and when one last started (the rollup each start adds to). */
export async function usageOfVersions(db: Db, versionIds: string[]): Promise<Map<string, VersionUsage>> {
  const rows = await db.select().from(moduleVersionUsage).where(inArray(moduleVersionUsage.moduleVersionId, versionIds));
  return new Map(rows.map((r) => [r.moduleVersionId, { runs: r.runs, lastUsedAt: r.lastUsedAt }]));
}

/**
 * The latest `limit` runs that had a task pinned to the version, newest first. Asked as EXISTS, the planner may walk
 * the runs newest first and stop at the `limit`th that used it (a version in use); as `id in (its tasks' runs)` it
 * read every task of the version first, however many runs ago they were.
 */
export async function runsUsingVersion(db: Db, versionId: string, limit: number): Promise<Run[]> {
  const used = db
    .select({ one: sql`1` })
    .from(tasks)
    .where(and(eq(tasks.runId, runs.id), eq(tasks.moduleVersionId, versionId)));
  return db.select().from(runs).where(exists(used)).orderBy(desc(runs.createdAt), desc(runs.id)).limit(limit);
}

/** The catalog by namespace and name (at most 1,000), optionally one namespace and a search in name or description. */
export function listModules(db: Db, filter: { namespace?: string | null; search?: string | null }): Promise<Module[]> {
  const like = filter.search ? `%${filter.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : null;
  return db
    .select()
    .from(modules)
    .where(
      and(
        filter.namespace ? eq(modules.namespace, filter.namespace) : undefined,
        like ? or(ilike(modules.name, like), ilike(modules.description, like)) : undefined,
      ),
    )
    .orderBy(asc(modules.namespace), asc(modules.name))
    .limit(1000);
}

export async function moduleByName(db: Db | Tx, namespace: string, name: string): Promise<Module | null> {
  const [mod] = await db
    .select()
    .from(modules)
    .where(and(eq(modules.namespace, namespace), eq(modules.name, name)));
  return mod ?? null;
}

/** A module's version by tag, else by version number (null: neither). */
export async function taggedOrNumberedVersion(db: Db, moduleId: string, selector: string): Promise<ModuleVersion | null> {
  const [tagged] = await db
    .select({ v: moduleVersions })
    .from(moduleTags)
    .innerJoin(moduleVersions, eq(moduleVersions.id, moduleTags.versionId))
    .where(and(eq(moduleTags.moduleId, moduleId), eq(moduleTags.tag, selector)));
  if (tagged) return tagged.v;
  const [v] = await db
    .select()
    .from(moduleVersions)
    .where(and(eq(moduleVersions.moduleId, moduleId), eq(moduleVersions.version, selector)));
  return v ?? null;
}

/** The id of `namespace/name@version` (a version number, not a tag); null when there is none. */
export async function moduleVersionIdOf(db: Db, namespace: string, name: string, version: string): Promise<string | null> {
  const [row] = await db
    .select({ id: moduleVersions.id })
    .from(moduleVersions)
    .innerJoin(modules, eq(modules.id, moduleVersions.moduleId))
    .where(and(eq(modules.namespace, namespace), eq(modules.name, name), eq(moduleVersions.version, version)));
  return row?.id ?? null;
}

/** A module version whose archive has this digest, or null. */
export async function versionWithDigest(db: Db, digest: string): Promise<ModuleVersion | null> {
  const [version] = await db.select().from(moduleVersions).where(eq(moduleVersions.digest, digest)).limit(1);
  return version ?? null;
}
