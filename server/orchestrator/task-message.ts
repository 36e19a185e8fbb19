// The bus message that hands one attempt of a module task to an executor: its module, parameters, upstream outputs
// and the datasets it may touch; and the batches (protocol 3) that carry a transaction's task messages to a pool.
import { joinFlat } from '../../plugins/bus/payload-limit';
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

/**
 * An outbox row of `message` as JSON (json_populate_recordset's input): its payload's own JSON inside, when it came
 * with it (joined once in poolMessages), not the payload serialized again.
 */
export const outboxRowJson = (message: PoolMessage) =>
  `{"kind":"task","pool":${JSON.stringify(message.pool)},"msg_id":${JSON.stringify(message.msgId)},"payload":${message.text ?? JSON.stringify(message.payload)}}`;

/** What `{"tasks":[` and `]}` add to a batch's members and their commas. */
const BATCH_FRAME_BYTES = Buffer.byteLength(JSON.stringify({ tasks: [] }));

/**
 * Each message's JSON, and its size in bytes where the size can matter: left out where the JSON is at most a third of
 * `limit` in characters, so fits it however it encodes (a UTF-16 unit is at most 3 bytes of UTF-8). Counting a
 * string's bytes flattens one that JSON.stringify built in parts: a copy of every message (~0.4 KB a task of S1) that
 * nothing reads, as the join into its bus message reads the parts. poolMessages counts one when its batch nears its limit.
 */
export function messageTexts(messages: TaskMessage[], limit: number): { texts: string[]; bytes: (number | undefined)[] } {
  const texts = messages.map((m) => JSON.stringify(m));
  return { texts, bytes: texts.map((t) => (t.length * 3 <= limit ? undefined : Buffer.byteLength(t))) };
}

/**
 * `messages` as few bus messages as fit: per pool, in order, batches of at most `maxTasks` tasks and `maxBytes`
 * bytes (`bytes[i]` is message i's JSON size; left out, with `texts`, it is counted from `texts[i]` only if its batch
 * nears `maxBytes`). A message alone goes as itself, under its own id, as before
 * protocol 3. Each message is expected to fit `maxBytes` on its own (dispatch fails the ones that do not). `texts[i]`,
 * when given, is message i's JSON: each bus message then comes with its own, joined from its members' (a 10,000-task
 * run's messages are ~4 MB of JSON, written to the outbox and published: serialized once, not three times).
 */
export function poolMessages(
  messages: TaskMessage[],
  bytes: readonly (number | undefined)[],
  maxBytes: number,
  maxTasks: number | ((pool: string) => number),
  texts?: string[],
): PoolMessage[] {
  const most = typeof maxTasks === 'number' ? () => maxTasks : maxTasks;
  const sizes = bytes.slice();
  const exact = (i: number) => (sizes[i] ??= Buffer.byteLength(texts![i]!));
  /** At least message i's size: exact, or 3 bytes a character. */
  const bound = (i: number) => sizes[i] ?? texts![i]!.length * 3;
  // `size`: the batch's size in bytes, or more (its members' bounds).
  const open = new Map<string, { tasks: TaskMessage[]; texts: string[]; members: number[]; size: number }>();
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
    // JSON.stringify({ tasks }) writes exactly this around its members' JSON (one flat string: published as it is).
    if (texts) message.text = batch.tasks.length === 1 ? batch.texts[0] : joinFlat('{"tasks":[', batch.texts, ',', ']}');
    out.push(message);
  };
  messages.forEach((message, i) => {
    let batch = open.get(message.pool);
    let full = !!batch && batch.tasks.length >= most(message.pool);
    if (batch && !full && batch.size + 1 + bound(i) > maxBytes) {
      // Near the limit by the bounds: counted exactly.
      batch.size = BATCH_FRAME_BYTES + batch.members.length - 1 + batch.members.reduce((sum, j) => sum + exact(j), 0);
      full = batch.size + 1 + exact(i) > maxBytes;
    }
    if (full) {
      close(message.pool);
      batch = undefined;
    }
    if (!batch) open.set(message.pool, { tasks: [message], texts: texts ? [texts[i]!] : [], members: [i], size: BATCH_FRAME_BYTES + bound(i) });
    else {
      batch.tasks.push(message);
      if (texts) batch.texts.push(texts[i]!);
      batch.members.push(i);
      batch.size += 1 + bound(i);
    }
  });
  for (const pool of [...open.keys()]) close(pool);
  return out;
}
