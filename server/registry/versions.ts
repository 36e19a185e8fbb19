// Registering a model version from a task output: the files (the artifacts the task logged under the output's folder,
// or the task output of that name stored as one JSON file) are content-addressed, so the same content registered
// again for the same model is the version already there; nothing new is written. The dataset columns the task and
// its upstream tasks read are recorded with the version: its lineage and its label (server/registry/lineage.ts).
import { and, eq, inArray, like, or, sql } from 'drizzle-orm';
import { digestOf } from '../artifacts/digest';
import type { ObjectStore } from '../artifacts/store';
import { audit } from '../audit/audit';
import type { AppAbility } from '../auth/ability';
import type { Db, Tx } from '../db/client';
import { datasets, datasetVersions } from '../db/tables/governance';
import type { Identity } from '../db/tables/identities';
import { type ModelVersion, modelVersionInputs, modelVersionParents, modelVersions } from '../db/tables/registry';
import { runs, type Task, tasks } from '../db/tables/runs';
import { runArtifacts } from '../db/tables/tracking';
import { AtelierError, badInput, notFound } from '../errors';
import { findTracked, type Tracked } from '../tracking/access';
import { filesTaskOf } from '../tracking/artifacts';
import type { ModelFile, TaskDataAccess } from '../vocabulary';
import { assertMayChangeRegistry, assertMayWriteModel, auditedRegistry, RecordedError } from './access';
import { registryEvent } from './events';
import { ensureModel, findModelVersion, parseModelName } from './models';

export interface RegisterInput {
  model: string;
  taskId: string;
  output: string;
  flavor?: string | null;
  signature?: Record<string, unknown> | null;
  metadata?: Record<string, unknown> | null;
  /**
   * The files, when they are already final (an MLflow 3 logged model finalized READY): the task then need not have
   * ended; without them, the task must have succeeded and its files are the output's.
   */
  files?: ModelFile[];
}

const jsonSize = (value: unknown) => Buffer.byteLength(JSON.stringify(value ?? null));

function checkInput(input: RegisterInput): void {
  parseModelName(input.model);
  if (!input.output || input.output.length > 1000 || input.output.startsWith('/') || input.output.split('/').includes('..'))
    throw badInput('output must name a task output or a relative artifact folder (at most 1000 characters, no "..").');
  if (input.flavor && input.flavor.length > 100) throw badInput('flavor is at most 100 characters (e.g. sklearn, pytorch, onnx).');
  if (jsonSize(input.signature) > 64 * 1024 || jsonSize(input.metadata) > 64 * 1024) throw badInput('signature and metadata are at most 64 KiB of JSON each.');
}

/** The version's files: artifacts under `output/` (or at `output`), else the task output `output` as one JSON file. */
async function filesOf(db: Db, store: ObjectStore, task: Task, output: string): Promise<ModelFile[]> {
  const escaped = output.replace(/[\\%_]/g, (c) => `\\${c}`);
  const rows = await db
    .select()
    .from(runArtifacts)
    .where(and(eq(runArtifacts.taskId, task.id), or(eq(runArtifacts.path, output), like(runArtifacts.path, `${escaped}/%`))));
  if (rows.length)
    return rows
      .map((r) => ({ path: r.path === output ? (r.path.split('/').pop() ?? r.path) : r.path.slice(output.length + 1), digest: r.digest, size: r.size }))
      .sort((a, b) => (a.path < b.path ? -1 : 1));
  const value = task.outputs?.[output];
  if (value === undefined) {
    const names = Object.keys(task.outputs ?? {});
    throw notFound(`Task ${task.id} has no output or artifact folder "${output}"${names.length ? `; its outputs: ${names.join(', ')}` : ''}.`);
  }
  const bytes = Buffer.from(JSON.stringify(value));
  return [{ path: `${output}.json`, digest: await store.put(bytes), size: bytes.length }];
}

/**
 * The task whose result a task holds, with its run: itself, or, when it did not execute (served from cache, reused by a
 * rerun), the task that produced the result: its files are the version's, and its lineage. The caller read the task
 * holding that result, which is all the version is made of.
 */
async function producerOf(db: Db, tracked: Tracked): Promise<Tracked> {
  const id = await filesTaskOf(db, tracked.task);
  if (id === tracked.task.id) return tracked;
  const [task] = await db.select().from(tasks).where(eq(tasks.id, id));
  const [run] = task ? await db.select().from(runs).where(eq(runs.id, task.runId)) : [];
  if (!task || !run || task.status !== 'SUCCEEDED')
    throw notFound(`Task ${tracked.task.id} reused the result of task ${id}, which is gone; register from a task that ran (start a run with refreshCache).`);
  return { task, run };
}

/** The data access of the task and of every task upstream of it in its run (one read of the run's tasks, walked here). */
async function upstreamAccess(db: Db | Tx, task: Task): Promise<{ taskId: string; access: TaskDataAccess }[]> {
  const all = await db
    .select({ id: tasks.id, node: tasks.node, dependsOn: tasks.dependsOn, mapParent: tasks.mapParent, dataAccess: tasks.dataAccess })
    .from(tasks)
    .where(eq(tasks.runId, task.runId));
  const byNode = new Map<string, typeof all>();
  for (const t of all) for (const node of [t.node, t.mapParent]) if (node) byNode.set(node, [...(byNode.get(node) ?? []), t]);
  const seen = new Set<string>([task.id]);
  const queue = all.filter((t) => t.id === task.id);
  const found: { taskId: string; access: TaskDataAccess }[] = [];
  while (queue.length) {
    const t = queue.pop()!;
    if (t.dataAccess) found.push({ taskId: t.id, access: t.dataAccess });
    for (const node of t.dependsOn)
      for (const up of byNode.get(node) ?? [])
        if (!seen.has(up.id)) {
          seen.add(up.id);
          queue.push(up);
        }
  }
  return found;
}

type InputRow = typeof modelVersionInputs.$inferInsert;
type ParentRow = Omit<typeof modelVersionParents.$inferInsert, 'modelVersionId'>;

/**
 * Every (dataset, version, column) read upstream (a port that names no columns read all of its version's), and the
 * model versions read upstream, whose own columns read count as read too: a model learned from its base model.
 */
async function inputsOf(db: Db | Tx, task: Task): Promise<{ inputs: Omit<InputRow, 'modelVersionId'>[]; parents: ParentRow[] }> {
  const upstream = await upstreamAccess(db, task);
  const reads = upstream.flatMap(({ taskId, access }) => Object.values(access.inputs ?? {}).map((input) => ({ taskId, ...input })));
  const parents = upstream.flatMap(({ taskId, access }) =>
    Object.entries(access.models ?? {}).map(([port, m]) => ({ taskId, port, parentVersionId: m.versionId })),
  );
  const rows = new Map<string, Omit<InputRow, 'modelVersionId'>>();
  if (parents.length) {
    const inherited = await db
      .select()
      .from(modelVersionInputs)
      .where(inArray(modelVersionInputs.modelVersionId, [...new Set(parents.map((p) => p.parentVersionId))]));
    const readBy = new Map(parents.map((p) => [p.parentVersionId, p.taskId]));
    for (const r of inherited)
      rows.set(`${r.datasetId}|${r.datasetVersion}|${r.column}`, {
        datasetId: r.datasetId,
        datasetVersion: r.datasetVersion,
        column: r.column,
        taskId: readBy.get(r.modelVersionId)!,
      });
  }
  if (!reads.length) return { inputs: [...rows.values()], parents };
  const names = [...new Set(reads.map((r) => r.dataset))];
  const found = await db
    .select({ id: datasets.id, namespace: datasets.namespace, name: datasets.name })
    .from(datasets)
    .where(inArray(sql`${datasets.namespace} || '/' || ${datasets.name}`, names));
  const idOf = new Map(found.map((d) => [`${d.namespace}/${d.name}`, d.id]));
  for (const read of reads) {
    const datasetId = idOf.get(read.dataset);
    if (!datasetId) continue;
    let columns = read.columns;
    if (!columns.length) {
      const [v] = await db
        .select({ columns: datasetVersions.columns })
        .from(datasetVersions)
        .where(and(eq(datasetVersions.datasetId, datasetId), eq(datasetVersions.version, read.version)));
      columns = (v?.columns ?? []).map((c) => c.name);
    }
    for (const column of columns) rows.set(`${datasetId}|${read.version}|${column}`, { datasetId, datasetVersion: read.version, column, taskId: read.taskId });
  }
  return { inputs: [...rows.values()], parents };
}

/**
 * Registers the content of a task output as a version of `model` (created on first use). The caller writes the
 * model's namespace and may read the task's run data; a task it may not read is answered as a missing one.
 */
export async function registerModelVersion(
  db: Db,
  store: ObjectStore,
  ability: AppAbility,
  identity: Identity,
  input: RegisterInput,
): Promise<{ version: ModelVersion; created: boolean }> {
  assertMayChangeRegistry(ability, identity, 'model.version.register');
  checkInput(input);
  const subject = `model:${input.model}`;
  return auditedRegistry(db, async () => {
    await assertMayWriteModel(db, ability, identity, parseModelName(input.model), 'model.register');
    let tracked: Tracked;
    try {
      tracked = await findTracked(db, { identity, ability, task: null }, input.taskId);
    } catch (error) {
      if (!(error instanceof AtelierError) || error.code !== 'NOT_FOUND') throw error;
      throw new RecordedError('NOT_FOUND', `No task ${input.taskId} that you may read: check the task id.`, {
        identity,
        action: 'model.register',
        decision: 'deny',
        subject,
        rule: 'a version is registered only from a task whose run data the caller may read',
        details: { taskId: input.taskId },
      });
    }
    if (!input.files && tracked.task.status !== 'SUCCEEDED')
      throw new AtelierError('CONFLICT', `Task ${tracked.task.id} is ${tracked.task.status}; register a version from a task that succeeded.`);
    // Files given (a logged model's) are that model's own: its lineage is the task named.
    const { task, run } = input.files ? tracked : await producerOf(db, tracked);
    const files = input.files ?? (await filesOf(db, store, task, input.output));
    const digest = digestOf(files.map((f) => [f.path, f.digest]));
    const { inputs, parents } = await inputsOf(db, task);
    return db.transaction(async (tx) => {
      const model = await ensureModel(tx, ability, identity, input.model);
      const [existing] = await tx
        .select()
        .from(modelVersions)
        .where(and(eq(modelVersions.modelId, model.id), eq(modelVersions.digest, digest)));
      if (existing) return { version: existing, created: false };
      const [{ next }] = (await tx
        .select({ next: sql<number>`coalesce(max(${modelVersions.version}), 0) + 1` })
        .from(modelVersions)
        .where(eq(modelVersions.modelId, model.id))) as [{ next: number }];
      const [version] = await tx
        .insert(modelVersions)
        .values({
          modelId: model.id,
          version: Number(next),
          digest,
          files,
          flavor: input.flavor ?? null,
          signature: input.signature ?? null,
          metadata: input.metadata ?? {},
          taskId: task.id,
          runId: run.id,
          domain: run.domain,
          output: input.output,
          cacheKey: task.cacheKey,
          createdBy: identity.id,
        })
        .returning();
      for (let i = 0; i < inputs.length; i += 1000)
        await tx.insert(modelVersionInputs).values(inputs.slice(i, i + 1000).map((r) => ({ ...r, modelVersionId: version!.id })));
      if (parents.length)
        await tx
          .insert(modelVersionParents)
          .values(parents.map((p) => ({ ...p, modelVersionId: version!.id })))
          .onConflictDoNothing();
      const ref = `${model.namespace}/${model.name}@${version!.version}`;
      await registryEvent(tx, 'version.registered', model.id, identity, { ref, versionId: version!.id, digest, taskId: task.id, runId: run.id });
      await audit(tx, {
        identity,
        action: 'model.register',
        decision: 'allow',
        subject,
        rule: 'writers of the namespace register versions from tasks they may read',
        details: { version: version!.version, taskId: task.id, digest },
      });
      return { version: version!, created: true };
    });
  });
}

/** Deprecates (or restores) a version: no alias moves to a deprecated version; aliases on it stay where they are. */
export async function deprecateModelVersion(
  db: Db,
  ability: AppAbility,
  identity: Identity,
  input: { ref: string; reason?: string | null; deprecated: boolean },
): Promise<ModelVersion> {
  assertMayChangeRegistry(ability, identity, 'model.version.deprecate');
  if (!input.ref.includes('@')) throw badInput(`Name the version: ${input.ref}@VERSION.`);
  return auditedRegistry(db, () =>
    db.transaction(async (tx) => {
      const { model, version } = await findModelVersion(tx, input.ref);
      await assertMayWriteModel(tx, ability, identity, model, 'model.deprecate');
      const [updated] = await tx
        .update(modelVersions)
        .set(
          input.deprecated
            ? { deprecatedAt: new Date(), deprecatedBy: identity.id, deprecationReason: input.reason ?? null }
            : { deprecatedAt: null, deprecatedBy: null, deprecationReason: null },
        )
        .where(eq(modelVersions.id, version.id))
        .returning();
      await registryEvent(tx, 'version.deprecated', model.id, identity, { versionId: version.id, version: version.version, deprecated: input.deprecated });
      return updated!;
    }),
  );
}
