// The Task object (one node of a run): its attempts, metrics and log lines, and Run.tasks.

import type { Task } from '../../server/db/tables/runs';
import type { TaskEvent } from '../../server/db/tables/task-events';
import { attemptEventsOf, type LogLine, logLinesOf, tasksOfRuns } from '../../server/runs/queries';
import { type DeclaredDataset, declaredDatasetsOf } from '../../server/tracking/inputs';
import { latestMetricsOf } from '../../server/tracking/queries';
import { guard } from '../auth';
import { builder } from '../builder';
import type { Context } from '../context';
import { groupBy } from '../loaders';
import { NodeRef } from '../node';
import { TaskStatusEnum } from './enums';
import { ModuleVersionRef } from './modules';
import { RunRef, seenRunDomain } from './runs';

export const TaskRef = builder.objectRef<Task>('Task');

const LogLineRef = builder.objectRef<LogLine>('LogLine').implement({
  fields: (t) => ({
    stream: t.exposeString('stream'),
    line: t.exposeString('line'),
    at: t.expose('at', { type: 'DateTime' }),
  }),
});

interface Attempt {
  attempt: number;
  host: string | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  state: string | null;
  reason: string | null;
  message: string | null;
  durationMs: number | null;
}
const AttemptRef = builder.objectRef<Attempt>('TaskAttempt').implement({
  description: 'One attempt of a task, as its executor host reported it.',
  fields: (t) => ({
    attempt: t.exposeInt('attempt'),
    host: t.exposeString('host', { nullable: true }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    state: t.exposeString('state', { nullable: true, description: 'SUCCEEDED, FAILED, CANCELLED or TIMED_OUT; null while it runs.' }),
    reason: t.exposeString('reason', { nullable: true }),
    message: t.exposeString('message', { nullable: true }),
    durationMs: t.exposeInt('durationMs', { nullable: true }),
  }),
});

/** A task's attempts from its start and result events (oldest first). */
function attemptsFrom(rows: TaskEvent[]): Attempt[] {
  const byAttempt = new Map<number, Attempt>();
  for (const row of rows) {
    const a = byAttempt.get(row.attempt) ?? {
      attempt: row.attempt,
      host: null,
      startedAt: null,
      finishedAt: null,
      state: null,
      reason: null,
      message: null,
      durationMs: null,
    };
    const payload = row.payload as {
      host?: string;
      outcome?: { state: string; reason?: string; message?: string };
      durationMs?: number;
      /** A start stored with its execution's result (server/orchestrator/event-rows.ts). */
      started?: { at: string; host?: string };
    };
    a.host = payload.host ?? a.host;
    if (row.kind === 'started') a.startedAt ??= row.at;
    else {
      if (payload.started) a.startedAt ??= new Date(payload.started.at);
      a.finishedAt = row.at;
      a.state = payload.outcome?.state ?? null;
      a.reason = payload.outcome?.reason ?? null;
      a.message = payload.outcome?.message ?? null;
      a.durationMs = payload.durationMs ?? null;
    }
    byAttempt.set(row.attempt, a);
  }
  return [...byAttempt.values()];
}

/** A task as the ability sees it: with its run's domain (a task whose run is gone counts as production). */
export const taskInstance = (task: Task, ctx: Context): object | Promise<object> => {
  const domain = seenRunDomain(ctx, task.runId);
  if (domain) return { ...task, domain };
  return RunRef.getDataloader(ctx)
    .load(task.runId)
    .then((run) => ({ ...task, domain: run?.domain ?? 'production' }));
};

TaskRef.implement({
  authScopes: guard('Task', 'Task', taskInstance),
  interfaces: [NodeRef],
  description: 'One node of a run: its pinned module version, parameters, attempts, timings and outcome.',
  fields: (t) => ({
    id: t.exposeID('id'),
    node: t.exposeString('node'),
    status: t.field({ type: TaskStatusEnum, resolve: (r) => r.status }),
    run: t.field({ type: RunRef, description: 'The run this task is a node of.', resolve: (task) => task.runId }),
    kind: t.exposeString('kind', { description: 'module, workflow (a nested workflow run) or map (a module fanned out over a list).' }),
    moduleRef: t.exposeString('moduleRef', { nullable: true, description: 'The module as the spec named it (a tag or a version).' }),
    moduleVersion: t.field({
      type: ModuleVersionRef,
      nullable: true,
      description: 'The version it was pinned to when the run started.',
      resolve: (r) => r.moduleVersionId,
    }),
    workflowRef: t.exposeString('workflowRef', { nullable: true, description: 'For a workflow node: the nested workflow as the spec named it.' }),
    childRun: t.field({
      type: RunRef,
      nullable: true,
      description: 'For a workflow node: its current nested run.',
      resolve: (r) => r.childRunId,
    }),
    mapParent: t.exposeString('mapParent', { nullable: true, description: 'For one item of a map: the map node.' }),
    mapIndex: t.exposeInt('mapIndex', { nullable: true }),
    parameters: t.expose('parameters', {
      type: 'JSON',
      nullable: true,
      description: 'Null (with a FORBIDDEN error) unless your teams are granted the run’s domain.',
    }),
    dependsOn: t.exposeStringList('dependsOn'),
    triggerRule: t.exposeString('triggerRule', { description: 'all_succeeded, all_done or any_failed.' }),
    condition: t.exposeString('condition', {
      nullable: true,
      description:
        'The spec’s `when`: a CEL condition over params, and the outputs and status of the direct upstreams, decided before the task is dispatched. False skips the task (reason condition-false).',
    }),
    retryAt: t.expose('retryAt', { type: 'DateTime', nullable: true, description: 'When a RETRYING task is tried again.' }),
    reusedFromTaskId: t.exposeID('reusedFromTaskId', { nullable: true, description: 'Set when a rerun reused an earlier run’s result for this node.' }),
    attempts: t.loadableList({
      type: AttemptRef,
      nullable: true,
      description: 'Every attempt that ended, oldest first, with its outcome.',
      load: async (ids: string[], ctx: Context) => groupBy(ids, await attemptEventsOf(ctx.services.db, ids), (e) => e.taskId).map(attemptsFrom),
      resolve: (task) => task.id,
    }),
    attempt: t.exposeInt('attempt'),
    maxAttempts: t.exposeInt('maxAttempts'),
    executor: t.exposeString('executor'),
    pool: t.exposeString('pool'),
    host: t.exposeString('host', { nullable: true }),
    outputs: t.expose('outputs', { type: 'JSON', nullable: true }),
    reason: t.exposeString('reason', { nullable: true }),
    message: t.exposeString('message', { nullable: true }),
    exitCode: t.exposeInt('exitCode', { nullable: true }),
    progress: t.exposeFloat('progress', { nullable: true }),
    progressMessage: t.exposeString('progressMessage', { nullable: true }),
    queuedAt: t.expose('queuedAt', { type: 'DateTime', nullable: true }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    durationMs: t.int({
      nullable: true,
      resolve: (r) => (r.startedAt && r.finishedAt ? r.finishedAt.getTime() - r.startedAt.getTime() : null),
    }),
    metrics: t.loadable({
      type: 'JSON',
      nullable: true,
      description:
        'The latest value of each metric the current attempt reported (a cached task: its source’s): { name: { value, step } }; NaN and ±Infinity as the strings "NaN", "Infinity", "-Infinity". Every point: `metricHistory`.',
      load: async (ids: string[], ctx: Context) => {
        const latest = await latestMetricsOf(ctx.services.db, ids);
        return ids.map((id) => latest.get(id) ?? {});
      },
      resolve: (task) => task.id,
    }),
    logs: t.field({
      type: [LogLineRef],
      nullable: true,
      description: 'Log lines of the current attempt, oldest first.',
      args: { attempt: t.arg.int(), limit: t.arg.int({ defaultValue: 1000 }) },
      resolve: (task, args, ctx) => logLinesOf(ctx.services.db, task.id, args.attempt ?? task.attempt, Math.min(Math.max(args.limit ?? 1000, 1), 10000)),
    }),
  }),
});

/** A dataset a task's MLflow client said it read (runs/log-inputs), as a task and a model version's lineage show it. */
export const DeclaredDatasetRef = builder.objectRef<DeclaredDataset>('DeclaredDataset').implement({
  description:
    'A dataset a task’s MLflow client said it read (mlflow.log_input, autolog): declared by the client, not traced by Atelier, so it counts in no label.',
  fields: (t) => ({
    name: t.exposeString('name'),
    digest: t.exposeString('digest'),
    sourceType: t.string({ resolve: (d) => d.sourceType ?? '' }),
    source: t.string({ resolve: (d) => d.source ?? '' }),
    context: t.string({
      nullable: true,
      description: 'Its `mlflow.data.context` tag (training, evaluation, …).',
      resolve: (d) => d.tags.find((tag) => tag.key === 'mlflow.data.context')?.value ?? null,
    }),
    taskId: t.exposeID('taskId'),
  }),
});

builder.objectField(TaskRef, 'declaredDatasets', (t) =>
  t.loadableList({
    type: DeclaredDatasetRef,
    nullable: true,
    description: 'The datasets its MLflow client declared (runs/log-inputs), in the order logged.',
    load: async (ids: string[], ctx: Context) => {
      const byTask = await declaredDatasetsOf(ctx.services.db, ids);
      return ids.map((id) => byTask.get(id) ?? []);
    },
    resolve: (task) => task.id,
  }),
);

builder.objectField(RunRef, 'tasks', (t) =>
  t.loadableGroup({
    type: TaskRef,
    load: (ids: string[], ctx: Context) => tasksOfRuns(ctx.services.db, ids),
    group: (task) => task.runId,
    resolve: (r) => r.id,
  }),
);
