// Facts the dispatch path would otherwise read again on every chain edge: module versions (what a task message and a
// cache key take from one: its digest and manifest, written once at publish and never changed), and the outputs of
// the tasks that succeeded earlier in the same transaction (just written by it, so already known). Both are only
// ever a shortcut: a version not held is read, and a restart starts with nothing held.
import { and, eq, getTableColumns, inArray, is, SQL } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import { type ModuleVersion, modules, moduleVersions } from '../db/tables/modules';
import { type NewTask, type Run, type Task, tasks } from '../db/tables/runs';
import type { TxContext } from './context';

/** A module version with its module's name, as dispatch and the cache keys need it. */
export interface VersionFacts {
  /** The row as first read: only its immutable columns (id, digest, manifest, moduleId, version) may be relied on. */
  version: ModuleVersion;
  namespace: string;
  name: string;
}

/** How many module versions one control plane keeps (a few KB each: the manifest). */
const MAX_VERSIONS = 2000;

/** A bounded map of module versions by id, oldest first out. */
export class VersionCache {
  private readonly held = new Map<string, VersionFacts>();

  /** The versions `ids` names, read from the database only for those not held. */
  async get(tx: Tx | Db, ids: string[]): Promise<Map<string, VersionFacts>> {
    const out = new Map<string, VersionFacts>();
    const missing: string[] = [];
    for (const id of new Set(ids)) {
      const facts = this.held.get(id);
      if (facts) out.set(id, facts);
      else missing.push(id);
    }
    if (!missing.length) return out;
    const rows = await tx
      .select({ version: moduleVersions, namespace: modules.namespace, name: modules.name })
      .from(moduleVersions)
      .innerJoin(modules, eq(modules.id, moduleVersions.moduleId))
      .where(inArray(moduleVersions.id, missing));
    for (const row of rows) {
      out.set(row.version.id, row);
      this.held.set(row.version.id, row);
      if (this.held.size > MAX_VERSIONS) this.held.delete(this.held.keys().next().value!);
    }
    return out;
  }
}

/** The key of a node's outputs in Step.outputs. */
export const outputKey = (runId: string, node: string) => `${runId}\u0000${node}`;

/**
 * The outputs of `nodes` of a run, from `known` (Step.outputs: written earlier in this transaction) when it holds all
 * of them, else undefined (the caller reads them).
 */
export function knownOutputs(known: Map<string, Record<string, unknown>>, runId: string, nodes: string[]): Map<string, Record<string, unknown>> | undefined {
  const out = new Map<string, Record<string, unknown>>();
  for (const node of nodes) {
    const outputs = known.get(outputKey(runId, node));
    if (!outputs) return undefined;
    out.set(node, outputs);
  }
  return out;
}

/**
 * The outputs of `ready`'s upstreams by node: those this transaction wrote (Step.outputs) are known, the rest read.
 * (On a chain edge that is the parent's success, recorded a moment earlier: one statement less per edge.)
 */
export async function upstreamOutputs({ tx, step }: TxContext, run: Pick<Run, 'id'>, ready: Task[]): Promise<Map<string, Record<string, unknown>>> {
  const upstreamNodes = [...new Set(ready.flatMap((t) => t.dependsOn))];
  const known = knownOutputs(step.outputs, run.id, upstreamNodes);
  if (known) return known;
  const rows = await tx
    .select({ node: tasks.node, outputs: tasks.outputs })
    .from(tasks)
    .where(and(eq(tasks.runId, run.id), inArray(tasks.node, upstreamNodes)));
  return new Map(rows.map((row) => [row.node, row.outputs ?? {}]));
}

/**
 * What insertedTask fills each column a row leaves out with, worked out once per column rather than per task (drizzle's
 * `is` and a structuredClone per column and task were most of its time): the column's default, copied only when it is
 * an object, else null; a default computed in SQL cannot be known here.
 */
const taskColumnFills = Object.entries(getTableColumns(tasks)).map(([key, column]) => {
  const known = column.hasDefault && column.default !== undefined && !is(column.default, SQL);
  if (!known && column.notNull && column.hasDefault) return { key, sqlDefault: true, value: null, copy: false };
  const value: unknown = known ? column.default : null;
  return { key, sqlDefault: false, value, copy: typeof value === 'object' && value !== null };
});
/**
 * Every column at its fill, as one object that `insertedTask` copies: a copy of an object with all its keys keeps its
 * shape (a fast V8 object), where ~50 keys added one by one made each task a dictionary object (~1.8 µs a task, and its
 * garbage, at 10,000). Object defaults (copied per task) and SQL defaults are filled in per task.
 */
const filled: Record<string, unknown> = JSON.parse(JSON.stringify(Object.fromEntries(taskColumnFills.map(({ key }) => [key, null]))));
for (const { key, sqlDefault, value, copy } of taskColumnFills) if (!sqlDefault && !copy) filled[key] = value;
const perTask = taskColumnFills.filter((f) => f.sqlDefault || f.copy);

/**
 * A task row as the insert that wrote it left it: its columns, each one it did not set at its default (or null). So
 * startRun hands dispatch the READY tasks it just wrote instead of reading every column of them back (at 10,000 tasks
 * that read was one of its largest statements, and the embedded default parses its rows in JavaScript).
 */
export function insertedTask(row: NewTask & { id: string }): Task {
  const task: Record<string, unknown> = { ...filled };
  const given = row as Record<string, unknown>;
  for (const key in given) if (given[key] !== undefined && key in filled) task[key] = given[key];
  for (const { key, sqlDefault, value } of perTask) {
    if (given[key] !== undefined) continue;
    if (sqlDefault) throw new Error(`insertedTask: tasks.${key} has a default computed in SQL; set it in the row`);
    task[key] = structuredClone(value);
  }
  return task as Task;
}
