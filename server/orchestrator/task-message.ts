// The bus message that hands one attempt of a module task to an executor: its module, parameters, upstream outputs
// and the datasets it may touch.
import type { TaskMessage } from '../../plugins/protocol';
import type { ModuleVersion } from '../db/tables/modules';
import type { Task } from '../db/tables/runs';
import type { TaskDataAccess } from '../vocabulary';

/** The message for `task`'s next attempt; `outputs` holds its upstreams' outputs by node (a missing one reads as `{}`). */
export function taskMessage(
  task: Task,
  version: Pick<ModuleVersion, 'digest' | 'manifest'>,
  outputs: Map<string, Record<string, unknown>>,
  enqueuedAt: Date,
): TaskMessage {
  return {
    taskId: task.id,
    runId: task.runId,
    attempt: task.attempt + 1,
    node: task.node,
    pool: task.pool,
    executor: task.executor,
    module: { ref: task.moduleRef!, digest: version.digest, entrypoint: version.manifest.entrypoint, runtime: version.manifest.runtime },
    parameters: task.parameters,
    inputs: Object.fromEntries(task.dependsOn.map((d) => [d, outputs.get(d) ?? {}])),
    timeoutMs: task.timeoutMs,
    settings: task.settings,
    ...(task.hotCluster ? { hotCluster: task.hotCluster } : {}),
    ...(task.dataAccess ? { datasets: handedOver(task.dataAccess) } : {}),
    ...(task.models
      ? {
          models: Object.fromEntries(
            Object.entries(task.models).map(([port, m]) => [port, { model: m.model, version: m.version, digest: m.digest, files: m.files }]),
          ),
        }
      : {}),
    enqueuedAt: enqueuedAt.toISOString(),
  };
}

/** What a module is told about its datasets: the permitted columns, without the labels that decided them. */
export function handedOver(access: TaskDataAccess): NonNullable<TaskMessage['datasets']> {
  return {
    inputs: Object.fromEntries(
      Object.entries(access.inputs).map(([port, { dataset, version, digest, columns }]) => [port, { dataset, version, digest, columns }]),
    ),
    outputs: access.outputs,
  };
}
