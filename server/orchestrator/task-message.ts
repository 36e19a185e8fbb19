// The bus message that hands one attempt of a module task to an executor: its module, parameters, upstream outputs
// and the datasets it may touch; and the batches (protocol 3) that carry a transaction's task messages to a pool.
import { type TaskBatch, type TaskMessage, taskBatchMessageId, taskMessageId } from '../../plugins/protocol';
import type { ModuleVersion } from '../db/tables/modules';
import type { Task } from '../db/tables/runs';
import type { TaskDataAccess } from '../vocabulary';

/**
 * The message for `task`'s next attempt; `outputs` holds its upstreams' outputs by node (a missing one reads as `{}`).
 * `claimAt`: the replica that reserves the attempt's first claim (ClaimReservations.claimAt), if one does.
 */
export function taskMessage(
  task: Task,
  version: Pick<ModuleVersion, 'digest' | 'manifest'>,
  outputs: Map<string, Record<string, unknown>>,
  enqueuedAt: Date,
  claimAt?: string,
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
    ...(claimAt ? { claimAt } : {}),
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

/** One bus message for a pool: a task message alone, or a batch of them. */
export interface PoolMessage {
  pool: string;
  msgId: string;
  payload: TaskMessage | TaskBatch;
  /** `payload`'s JSON, when its messages' JSON was given: what JSON.stringify(payload) makes, not made again. */
  text?: string;
}

/** What `{"tasks":[` and `]}` add to a batch's members and their commas. */
const BATCH_FRAME_BYTES = Buffer.byteLength(JSON.stringify({ tasks: [] }));

/**
 * `messages` as few bus messages as fit: per pool, in order, batches of at most `maxTasks` tasks and `maxBytes`
 * bytes (`bytes[i]` is message i's JSON size). A message alone goes as itself, under its own id, as before
 * protocol 3. Each message is expected to fit `maxBytes` on its own (dispatch fails the ones that do not). `texts[i]`,
 * when given, is message i's JSON: each bus message then comes with its own, joined from its members' (a 10,000-task
 * run's messages are ~4 MB of JSON, written to the outbox and published: serialized once, not three times).
 */
export function poolMessages(
  messages: TaskMessage[],
  bytes: number[],
  maxBytes: number,
  maxTasks: number | ((pool: string) => number),
  texts?: string[],
): PoolMessage[] {
  const most = typeof maxTasks === 'number' ? () => maxTasks : maxTasks;
  const open = new Map<string, { tasks: TaskMessage[]; texts: string[]; size: number }>();
  const out: PoolMessage[] = [];
  const close = (pool: string) => {
    const batch = open.get(pool);
    if (!batch) return;
    open.delete(pool);
    const [first] = batch.tasks;
    const message: PoolMessage =
      batch.tasks.length === 1
        ? { pool, msgId: taskMessageId(first!.taskId, first!.attempt), payload: first! }
        : { pool, msgId: taskBatchMessageId(first!, batch.tasks.length), payload: { tasks: batch.tasks } };
    // JSON.stringify({ tasks }) writes exactly this around its members' JSON.
    if (texts) message.text = batch.tasks.length === 1 ? batch.texts[0] : `{"tasks":[${batch.texts.join(',')}]}`;
    out.push(message);
  };
  messages.forEach((message, i) => {
    const size = bytes[i]!;
    let batch = open.get(message.pool);
    if (batch && (batch.tasks.length >= most(message.pool) || batch.size + 1 + size > maxBytes)) {
      close(message.pool);
      batch = undefined;
    }
    if (!batch) open.set(message.pool, { tasks: [message], texts: texts ? [texts[i]!] : [], size: BATCH_FRAME_BYTES + size });
    else {
      batch.tasks.push(message);
      if (texts) batch.texts.push(texts[i]!);
      batch.size += 1 + size;
    }
  });
  for (const pool of [...open.keys()]) close(pool);
  return out;
}
