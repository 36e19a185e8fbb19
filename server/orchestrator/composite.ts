// Composite nodes, which the control plane runs itself: a `workflow` node starts a nested run and ends when it
// reports back; a `map` node fans out into one task per item and ends when every item has.
import { randomUUID } from 'node:crypto';
import { and, asc, eq, isNull } from 'drizzle-orm';
import { permanentFailure, succeeded } from '../../plugins/outcomes';
import type { ExecutorEvent } from '../../plugins/protocol';
import { AuditedDenial, audit } from '../audit/audit';
import { bulkInsert } from '../db/bulk';
import { identities } from '../db/tables/identities';
import { moduleVersions } from '../db/tables/modules';
import { outbox } from '../db/tables/outbox';
import { type NewTask, type Run, type Task, tasks } from '../db/tables/runs';
import { workflows, workflowVersions } from '../db/tables/workflows';
import { AtelierError, notFound } from '../errors';
import { checkParameters } from '../modules/manifest';
import type { RunStatus } from '../vocabulary';
import { outputRef } from '../workflows/spec';
import { type TxContext, taskStatusEvent } from './context';
import { mapOutcome, nestedRunOutcome } from './outcomes';
import { isTerminal } from './rules';
import { applyOutcome } from './settle';
import { createRun } from './start';

/** A node the control plane runs itself (a nested workflow, a map) starts its next attempt: RUNNING now. */
async function startControlPlaneAttempt({ tx, step }: TxContext, task: Task): Promise<Task> {
  const [running] = await tx
    .update(tasks)
    .set({ status: 'RUNNING', attempt: task.attempt + 1, queuedAt: step.at, startedAt: step.at, finishedAt: null, retryAt: null, reason: null, message: null })
    .where(eq(tasks.id, task.id))
    .returning();
  taskStatusEvent(step, running!, 'RUNNING');
  return running!;
}

/** Starts the child run of a `workflow` node. Returns true when the node ended at once (it could not start). */
export async function startChildRun(tc: TxContext, run: Run, task: Task): Promise<boolean> {
  const { tx, step } = tc;
  const running = await startControlPlaneAttempt(tc, task);
  const [version] = await tx.select().from(workflowVersions).where(eq(workflowVersions.id, task.childWorkflowVersionId!));
  const [workflow] = version ? await tx.select().from(workflows).where(eq(workflows.id, version.workflowId)) : [];
  try {
    if (!version || !workflow)
      throw notFound(`the pinned version of ${task.workflowRef} no longer exists; start a new run, which pins the workflow's current version`);
    const [creator] = run.createdBy ? await tx.select().from(identities).where(eq(identities.id, run.createdBy)) : [];
    // Linked before it is made: a child whose every task is served from cache ends inside createRun, and its end
    // reaches this node only if the node already names it (notifyParent). Linked after, the node stayed RUNNING and
    // the parent run never ended.
    const childId = randomUUID();
    await tx
      .update(tasks)
      .set({ childRunId: childId, message: `nested run ${childId}` })
      .where(eq(tasks.id, task.id));
    running.childRunId = childId;
    await createRun(tc, {
      id: childId,
      workflow,
      version,
      parameters: task.parameters,
      trigger: 'PARENT',
      identity: creator ?? null,
      scopes: run.scopes,
      parent: running,
      domain: run.domain,
      refreshCache: run.refreshCache,
      cacheNamespace: run.cacheNamespace,
      priority: run.priority,
      parentDeadlineAt: run.deadlineAt,
    });
    return false;
  } catch (error) {
    if (!(error instanceof AtelierError)) throw error;
    // No child was made: the node names what it named before (an earlier attempt's child, or none).
    await tx.update(tasks).set({ childRunId: task.childRunId }).where(eq(tasks.id, task.id));
    running.childRunId = task.childRunId;
    // A refusal ends the node instead of rolling back: its audit record is written here, in the same transaction.
    if (error instanceof AuditedDenial) await audit(tx, error.entry);
    const ended = await applyOutcome(
      tc,
      running,
      permanentFailure('child-run-invalid', `the nested workflow ${task.workflowRef} cannot start: ${error.message}`),
      { at: step.at, durationMs: 0, host: null },
    );
    return isTerminal(ended.status);
  }
}

/** Tells the parent run that a nested run ended, as an event through the outbox, so locks are never nested upwards. */
export async function notifyParent({ tx, step }: TxContext, run: Run, status: RunStatus, message: string | null): Promise<void> {
  if (!run.parentTaskId) return;
  const [parentTask] = await tx.select().from(tasks).where(eq(tasks.id, run.parentTaskId));
  if (!parentTask || parentTask.childRunId !== run.id || parentTask.status !== 'RUNNING') return;
  const outputs = Object.fromEntries(
    (
      await tx
        .select({ node: tasks.node, outputs: tasks.outputs })
        .from(tasks)
        .where(and(eq(tasks.runId, run.id), eq(tasks.status, 'SUCCEEDED'), isNull(tasks.mapParent)))
    ).map((t) => [t.node, t.outputs ?? {}]),
  );
  const event: ExecutorEvent = {
    kind: 'result',
    taskId: parentTask.id,
    runId: parentTask.runId,
    attempt: parentTask.attempt,
    seq: 0,
    at: step.at.toISOString(),
    host: 'control-plane',
    durationMs: step.at.getTime() - (parentTask.startedAt?.getTime() ?? step.at.getTime()),
    outcome: nestedRunOutcome(run.id, status, message, outputs),
  };
  await tx.insert(outbox).values({ kind: 'event', msgId: `nested:${run.id}`, payload: event });
  step.outbox = true;
}

/** Fans a `map` node out into one task per item. Returns true when the node ended at once (empty or bad list). */
export async function expandMap(tc: TxContext, run: Run, task: Task): Promise<boolean> {
  const { tx, step } = tc;
  const running = await startControlPlaneAttempt(tc, task);
  const fail = async (reason: string, message: string) =>
    isTerminal((await applyOutcome(tc, running, permanentFailure(reason, message), { at: step.at, durationMs: 0, host: null })).status);
  let items = task.mapOver;
  const from = outputRef(items);
  if (from) {
    const [upstream] = await tx
      .select({ outputs: tasks.outputs })
      .from(tasks)
      .where(and(eq(tasks.runId, run.id), eq(tasks.node, from.node)));
    items = upstream?.outputs?.[from.name];
  }
  if (!Array.isArray(items)) {
    const what = from ? `output "${from.name}" of ${from.node}` : 'its list';
    return fail('map-over-non-list', `cannot map over ${what}: it is ${items === undefined ? 'missing' : `a ${typeof items}, not a list`}`);
  }
  const [version] = await tx.select().from(moduleVersions).where(eq(moduleVersions.id, task.moduleVersionId!));
  const rows: (NewTask & { id: string })[] = [];
  for (const [i, item] of items.entries()) {
    const parameters = { ...task.parameters, [task.mapAs ?? 'item']: item };
    const problems = checkParameters(version!.digest, version!.manifest, parameters);
    if (problems.length)
      return fail('map-item-invalid', `item ${i} does not fit ${task.moduleRef}: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`);
    rows.push({
      id: randomUUID(),
      runId: run.id,
      node: `${task.node}[${i}]`,
      kind: 'module',
      moduleRef: task.moduleRef,
      moduleVersionId: task.moduleVersionId,
      parameters,
      dependsOn: task.dependsOn,
      status: 'READY',
      queuedAt: step.at,
      maxAttempts: task.maxAttempts,
      retryDelayMs: task.retryDelayMs,
      timeoutMs: task.timeoutMs,
      pool: task.pool,
      executor: task.executor,
      settings: task.settings,
      gpus: task.gpus,
      hotCluster: task.hotCluster,
      dataAccess: task.dataAccess,
      models: task.models,
      mapParent: task.node,
      mapIndex: i,
    });
  }
  if (!rows.length) {
    const done = await applyOutcome(tc, running, succeeded({ outputs: { results: [] } }), { at: step.at, durationMs: 0, host: null });
    return isTerminal(done.status);
  }
  await bulkInsert(tx, tasks, rows);
  for (const child of rows) taskStatusEvent(step, { id: child.id, runId: run.id, node: child.node, attempt: 0 }, 'READY');
  await tx
    .update(tasks)
    .set({ message: `${rows.length} items` })
    .where(eq(tasks.id, task.id));
  return false;
}

/** When every item of a map has ended, the map node ends: its outputs are the items' outputs, in order. */
export async function completeMaps(tc: TxContext, run: Run, parents: string[]): Promise<string[]> {
  const { tx, step } = tc;
  const ended: string[] = [];
  for (const parent of new Set(parents)) {
    const items = await tx
      .select()
      .from(tasks)
      .where(and(eq(tasks.runId, run.id), eq(tasks.mapParent, parent)))
      .orderBy(asc(tasks.mapIndex));
    if (!items.every((t) => isTerminal(t.status))) continue;
    const [node] = await tx
      .select()
      .from(tasks)
      .where(and(eq(tasks.runId, run.id), eq(tasks.node, parent)));
    if (node?.status !== 'RUNNING') continue;
    const updated = await applyOutcome(tc, node, mapOutcome(items), {
      at: step.at,
      durationMs: step.at.getTime() - (node.startedAt?.getTime() ?? step.at.getTime()),
      host: null,
    });
    if (isTerminal(updated.status)) ended.push(parent);
  }
  return ended;
}
