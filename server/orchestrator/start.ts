// Starting runs: the run of a start (start-run.ts), a clone of a run with some parameters changed, and a rerun that
// reuses a run's results; each plans its tasks, checks their data access, and dispatches what is ready.
import { randomUUID } from 'node:crypto';
import { and, eq, inArray, sql } from 'drizzle-orm';
import { AuditedDenial } from '../audit/audit';
import type { TokenScopes } from '../auth/ability';
import { grantsOf } from '../auth/grants';
import { claimCacheNamespace } from '../cache/namespaces';
import type { RunActor } from '../compute/cluster-access';
import { bulkInsert } from '../db/bulk';
import type { Tx } from '../db/client';
import type { HotCluster } from '../db/tables/executors';
import type { Identity } from '../db/tables/identities';
import { type NewTask, type Run, runs, tasks } from '../db/tables/runs';
import { workflows, workflowVersions } from '../db/tables/workflows';
import { isUuid } from '../db/uuid';
import { badInput, forbidden, notFound } from '../errors';
import { decideTaskAccess, touchesData } from '../governance/task-access';
import { workflowExperiment } from '../tracking/experiments';
import { inheritMetricSummaries } from '../tracking/inherit';
import type { TaskDataAccess } from '../vocabulary';
import { planRun } from '../workflows/plan';
import { resolveRunParameters } from '../workflows/spec';
import { partitionItems, partitionsSource, pinnedModels, resolveModelInputs } from './batch-inputs';
import { type OrchestratorContext, sentBehind, type TxContext, taskStatusEvent, transact } from './context';
import { dispatch, mayQueueUnwritten } from './dispatch';
import { insertedTask } from './known-facts';
import { admitsNewRun } from './limits';
import type { RerunInput } from './orchestrator';
import { initialStatuses, upstreamCounts } from './rules';
import { readersOf } from './run-actor';
import { deadlineOf, runTimeoutMs } from './run-deadline';
import { pinnedVersions, rerunReuse } from './run-inputs';
import { finishIfDone } from './settle';
import { actorOf, assertMayRunWorkflowIn, assertMayUseHotClusters, type CreateRun } from './start-checks';
import { insertRun, type StartedRun, startedRow } from './start-statements';
import { noteVersionsUsed } from './version-usage';

export async function cloneRun(
  ctx: OrchestratorContext,
  runId: string,
  parameters: Record<string, unknown>,
  identity: Identity | null,
  scopes: TokenScopes = null,
): Promise<Run> {
  return transact(ctx, async (tc) => {
    const { source, workflow, version, sourceTasks } = await loadSource(tc.tx, runId);
    // A clone runs in its source's private namespace: only that namespace's owner may.
    if (source.cacheNamespace) await claimCacheNamespace(tc.tx, source.cacheNamespace, identity);
    const merged = resolveRunParameters(version.spec, { ...source.parameters, ...parameters });
    const pinned = pinnedVersions(sourceTasks);
    return createRun(tc, {
      pinnedModels: pinnedModels(sourceTasks),
      workflow,
      version,
      parameters: merged,
      trigger: 'CLONE',
      identity,
      scopes,
      sourceRunId: source.id,
      pinned,
      domain: source.domain,
      cacheNamespace: source.cacheNamespace,
      priority: source.priority,
      timeoutSeconds: keptTimeout(source),
    });
  });
}

export async function rerunRun(
  ctx: OrchestratorContext,
  runId: string,
  input: RerunInput,
  identity: Identity | null,
  scopes: TokenScopes = null,
): Promise<Run> {
  return transact(ctx, async (tc) => {
    const { source, workflow, version, sourceTasks } = await loadSource(tc.tx, runId);
    if (source.cacheNamespace) await claimCacheNamespace(tc.tx, source.cacheNamespace, identity);
    const reuse = rerunReuse(runId, sourceTasks, input);
    // Reusing the source's results is reading its outputs, as a cache hit is: only as far as the token reads them.
    if (reuse.size && identity && !ctx.mayReuse(identity, source, await grantsOf(tc.tx, identity), scopes))
      throw forbidden(
        `A rerun reuses the results of run ${runId}, whose outputs your token may not read (read:Task): rerun with from: ALL, which reuses none, or with a token that reads them.`,
      );
    const pinned = pinnedVersions(sourceTasks);
    const overrides = new Map(Object.entries(input.modules ?? {}));
    return createRun(tc, {
      pinnedModels: pinnedModels(sourceTasks),
      workflow,
      version,
      parameters: source.parameters,
      trigger: 'RERUN',
      identity,
      scopes,
      sourceRunId: source.id,
      pinned,
      overrides,
      reuse,
      domain: source.domain,
      cacheNamespace: source.cacheNamespace,
      priority: source.priority,
      timeoutSeconds: keptTimeout(source),
    });
  });
}

/** A clone's or a rerun's time limit: its source's (the spec's, or the override the source was started with). */
const keptTimeout = (source: Run) => (source.timeoutMs === null ? undefined : source.timeoutMs / 1000);

async function loadSource(tx: Tx, runId: string) {
  if (!isUuid(runId)) throw badInput(`"${runId}" is not a run id (a UUID); \`atelier run list\` shows the recent ones.`);
  const [source] = await tx.select().from(runs).where(eq(runs.id, runId));
  if (!source) throw notFound(`No run ${runId}; \`atelier run list\` shows the recent ones.`);
  if (!source.workflowId || !source.workflowVersionId)
    throw badInput(`Run ${runId} was logged from outside a workflow (trigger EXTERNAL): there is no workflow to run again. Log a new run instead.`);
  const [workflow] = await tx.select().from(workflows).where(eq(workflows.id, source.workflowId));
  const [version] = await tx.select().from(workflowVersions).where(eq(workflowVersions.id, source.workflowVersionId));
  const sourceTasks = await tx.select().from(tasks).where(eq(tasks.runId, runId));
  return { source, workflow: workflow!, version: version!, sourceTasks };
}

/** Plans and writes a run with its tasks, then dispatches what can start (a run waiting for admission starts none). */
export async function createRun(tc: TxContext, input: CreateRun): Promise<Run> {
  const { ctx, tx, step } = tc;
  // The workflow's experiment (startRun's read of the workflow brings it; others read it) is made on first use alongside
  // the checks and the plan rather than after them: the statements follow each other without a round trip of their own.
  const experiment = input.experimentId === undefined ? workflowExperiment(tx, input.workflow, input.workflowExperiment) : undefined;
  experiment?.catch(() => undefined); // awaited below; a check that throws first ends the transaction anyway
  await assertMayRunWorkflowIn(tx, input);
  const spec = input.version.spec;
  const clustersUsed = new Map<string, HotCluster>();
  const planned = await planRun(tx, spec, input.parameters, ctx.defaults, {
    pinned: input.pinned,
    overrides: input.overrides,
    stack: [`${input.workflow.name}@${input.version.version}`, ...(input.stack ?? [])],
    hotCluster: input.hotCluster,
    clustersUsed,
    modules: input.ahead?.modules,
  });
  // Whom it acts for, asked only where it decides something (a hot cluster used, a model taken): a read or two.
  let acting: Promise<RunActor | null> | undefined;
  const actor = () => (acting ??= actorOf(tx, input));
  await assertMayUseHotClusters(tx, input, clustersUsed, actor);
  // Models are read as whom the run acts for (its starter as the token allows; a schedule's, trigger's or monitor's
  // owners for the runs they start, nested ones included): unchecked, a team's trigger handed its task another team's
  // model version by number, and a token scoped to starting runs read every model its identity may.
  const models = await resolveModelInputs(tx, spec.tasks, async () => readersOf(tx, await actor()), input.pinnedModels);
  const partitionReads = new Map<string, { dataset: string; version: number }>();
  for (const task of planned) {
    const source = partitionsSource(task.mapOver);
    if (!source) continue;
    const items = await partitionItems(tx, task.node, source, input.domain);
    task.mapOver = items;
    partitionReads.set(task.node, { dataset: items[0]!.dataset as string, version: items[0]!.version as number });
  }
  // Refused data is refused now, before anything exists, as well as again at dispatch (labels change).
  const dataAccess = new Map<string, TaskDataAccess>();
  for (const task of planned) {
    const implicit = { models: models.get(task.node), partitions: partitionReads.get(task.node) };
    if (!task.version || !touchesData(task.version.manifest, implicit)) continue;
    const decision = await decideTaskAccess(tx, input.domain, task.version.manifest, implicit);
    if ('denied' in decision) {
      const { rule, message, subjects } = decision.denied;
      throw new AuditedDenial(
        {
          identity: input.identity,
          action: 'data.start',
          decision: 'deny',
          subject: `workflow:${input.workflow.name}`,
          rule,
          details: { node: task.node, domain: input.domain, refused: subjects },
        },
        `Node "${task.node}" is refused by data policy: ${message} (${rule}). Change the run's domain, the module's declared inputs, or the labels.`,
      );
    }
    dataAccess.set(task.node, decision.access);
  }
  let admitted = true;
  const maxActiveRuns = spec.concurrency?.maxActiveRuns;
  if (maxActiveRuns) {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`atelier-workflow:${input.workflow.id}`}))`);
    const [active] = await tx
      .select({ n: sql<number>`count(*)::int` })
      .from(runs)
      .where(and(eq(runs.workflowId, input.workflow.id), eq(runs.admitted, true), inArray(runs.status, ['QUEUED', 'RUNNING'])));
    admitted = admitsNewRun(maxActiveRuns, active?.n ?? 0);
  }
  const experimentId = input.experimentId ?? (await experiment!).id;
  const timeoutMs = runTimeoutMs(input.timeoutSeconds, spec.timeoutSeconds);
  // The run's id is made here, so its tasks' insert follows the run's on the connection without waiting for it (one
  // round trip for both): Postgres runs them in the order sent, so the tasks' reference to the run holds.
  const runId = input.id ?? randomUUID();
  const values: StartedRun = {
    id: runId,
    workflowId: input.workflow.id,
    workflowVersionId: input.version.id,
    experimentId,
    status: 'QUEUED',
    parameters: input.parameters,
    trigger: input.trigger,
    sourceRunId: input.sourceRunId ?? null,
    parentRunId: input.parent?.runId ?? null,
    parentTaskId: input.parent?.id ?? null,
    idempotencyKey: input.idempotencyKey ?? null,
    admitted,
    maxParallelTasks: spec.concurrency?.maxParallelTasks ?? null,
    domain: input.domain,
    refreshCache: input.refreshCache ?? false,
    cacheNamespace: input.cacheNamespace ?? null,
    priority: input.priority ?? 0,
    timeoutMs,
    // Counted from admission: a run held back by maxActiveRuns gets its deadline when admitted (sweep.ts).
    deadlineAt: admitted ? deadlineOf(step.at, timeoutMs, input.parentDeadlineAt) : null,
    createdBy: input.identity?.id ?? null,
    scopes: input.identity ? (input.scopes ?? null) : null,
    createdAt: step.at,
    message: admitted ? null : `waiting: workflow ${input.workflow.name} allows ${maxActiveRuns} active run${maxActiveRuns === 1 ? '' : 's'} at once`,
  };
  // Nothing below waits for the insert's answer: dispatch works on the row as written (`startedRow`), so the enqueue,
  // the feed's append and the COMMIT follow the insert on the connection (one round trip less). Its answer, once it
  // comes, replaces the row's values (the same ones, `parameters` as jsonb gives them back) but not the status this
  // transaction moves on; transact awaits it before the commit and fails with its error if it failed.
  const run = startedRow(values);
  sentBehind(
    tc,
    insertRun(tx, values).then(([stored]) => void Object.assign(run, stored, { status: run.status })),
  );
  const statuses = initialStatuses(planned, input.reuse);
  const rows: (NewTask & { id: string })[] = planned.map((p) => {
    const reused = input.reuse?.get(p.node);
    const status = statuses.get(p.node)!;
    return {
      id: randomUUID(),
      runId,
      node: p.node,
      kind: p.kind,
      moduleRef: p.moduleRef,
      moduleVersionId: p.version?.id ?? null,
      workflowRef: p.workflowRef,
      childWorkflowVersionId: p.childWorkflowVersionId,
      mapOver: p.mapOver ?? null,
      mapAs: p.mapAs,
      parameters: p.parameters,
      dependsOn: p.dependsOn,
      triggerRule: p.triggerRule,
      condition: p.condition,
      ...upstreamCounts(p.dependsOn, statuses),
      status,
      maxAttempts: p.maxAttempts,
      retryDelayMs: p.retryDelayMs,
      timeoutMs: p.timeoutMs,
      pool: p.pool,
      executor: p.executor,
      settings: p.settings,
      gpus: p.gpus,
      hotCluster: p.hotCluster,
      dataAccess: dataAccess.get(p.node) ?? null,
      models: models.get(p.node) ?? null,
      queuedAt: status === 'READY' ? step.at : null,
      ...(reused
        ? {
            outputs: reused.outputs,
            reusedFromTaskId: reused.id,
            startedAt: reused.startedAt,
            finishedAt: reused.finishedAt,
            host: reused.host,
            progress: 1,
            reason: 'reused',
            message: `reused the result of run ${reused.runId}`,
          }
        : status === 'SKIPPED'
          ? { reason: 'upstream-failed', message: 'skipped: its trigger rule can never be met', finishedAt: step.at }
          : {}),
    };
  });
  // The READY tasks as written, in the order dispatch reads them (queued together, so by node: the database's C
  // collation is code-unit order), rather than read back. Those dispatch queues at once whatever it reads are left
  // for it to write, QUEUED: one row version and one feed event less per task.
  const ready = rows
    .filter((t) => t.status === 'READY')
    .map(insertedTask)
    .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  // Which nodes wait on each task: the recorder reads a result's children by key (run-edges.ts).
  ctx.runEdges.planned(runId, rows);
  const direct = await mayQueueUnwritten(tc, { admitted, maxParallelTasks: spec.concurrency?.maxParallelTasks ?? null, status: 'QUEUED' }, ready);
  await bulkInsert(
    tx,
    tasks,
    rows.filter((t) => !direct.has(t.id)),
  );
  noteVersionsUsed(
    step,
    rows.map((t) => t.moduleVersionId),
  );
  await inheritMetricSummaries(
    tx,
    run.id,
    rows.flatMap((t) => (t.reusedFromTaskId ? [{ id: t.id, source: t.reusedFromTaskId }] : [])),
  );
  step.feed.push({
    kind: 'run-status',
    runId: run.id,
    status: 'QUEUED',
    message: run.message,
    domain: run.domain,
    deadlineAt: run.deadlineAt?.toISOString() ?? null,
    at: step.at.toISOString(),
  });
  for (const t of rows)
    if (t.status !== 'PENDING' && !direct.has(t.id))
      taskStatusEvent(step, { id: t.id, runId: t.runId, node: t.node, attempt: 0 }, t.status!, t.reason ?? null, t.message ?? null);
  // A run that queued a task is open: the check for a run with nothing left to do (all reused, skipped or composite
  // work done at once) is a round trip only the others need.
  const unwritten = new Map(rows.filter((t) => direct.has(t.id)).map((t) => [t.id, t]));
  if (!(await dispatch(tc, run, ready, unwritten))) await finishIfDone(tc, run);
  return run;
}
