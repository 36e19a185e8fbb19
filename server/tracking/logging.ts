// What a tracked task logs (MLflow's log-param/log-metric/log-batch/set-tag, an external run's mutations), checked
// against MLflow's limits before anything is written: a request over a limit or with one bad item writes nothing.
// Params are immutable (the same value again is fine, another value is refused); tags may change; every metric
// point is kept through `storeMetricPoints`.
import { and, eq, inArray, sql } from 'drizzle-orm';
import { type Db, queryRows, retryingTransaction, type Tx } from '../db/client';
import { runs } from '../db/tables/runs';
import { loggedParams, runTags } from '../db/tables/tracking';
import { badInput } from '../errors';
import { assertWithinInputLimits } from '../errors/input-limits';
import { assertMayLog, type Caller, findTracked, type Tracked } from './access';
import { refreshCopies } from './inherit';
import { type LiveFeed, metricEvents, withLiveEvents } from './live';
import { type MetricPointInput, storeMetricPoints } from './metrics';

/** MLflow's limits (mlflow/utils/validation.py, 2.x): per log-batch request, and per key and value. */
export const LIMITS = {
  batchMetrics: 1000,
  batchParams: 100,
  batchTags: 100,
  batchTotal: 1000,
  keyLength: 250,
  paramValueLength: 6000,
  tagValueLength: 8000,
} as const;

export interface KeyValue {
  key: string;
  value: string;
}
export interface MetricInput {
  key: string;
  value: number;
  /** Milliseconds since the epoch; default now. */
  timestamp?: number;
  step?: number;
}

// MLflow's rule: alphanumerics, underscores, dashes, periods, spaces, colons and slashes; no `..` segment, not absolute.
const keyRe = /^[\w\-. :/]+$/;

/** A key (of a param, tag, metric or experiment tag) as MLflow takes it: `kind[i]` names it in the refusal. */
export function checkKey(kind: string, key: unknown, i: number): asserts key is string {
  if (typeof key !== 'string' || !key) throw badInput(`${kind}[${i}].key must be a non-empty string.`);
  if (key.length > LIMITS.keyLength) throw badInput(`${kind}[${i}].key "${key.slice(0, 40)}…" is ${key.length} characters; at most ${LIMITS.keyLength}.`);
  if (!keyRe.test(key) || key.startsWith('/') || key.split('/').some((s) => s === '..' || s === '.'))
    throw badInput(
      `${kind}[${i}].key "${key}" may only contain alphanumerics, underscores, dashes, periods, spaces, colons and slashes, and may not be a path with "." or ".." segments.`,
    );
}

export function checkParams(params: readonly KeyValue[]): void {
  params.forEach((p, i) => {
    checkKey('params', p.key, i);
    if (typeof p.value !== 'string') throw badInput(`params[${i}].value must be a string.`);
    if (p.value.length > LIMITS.paramValueLength)
      throw badInput(`params[${i}] "${p.key}": its value is ${p.value.length} characters; at most ${LIMITS.paramValueLength}.`);
  });
  const seen = new Map<string, string>();
  for (const p of params) {
    if (seen.has(p.key) && seen.get(p.key) !== p.value) throw badInput(`Param "${p.key}" is given twice with different values in one request; send it once.`);
    seen.set(p.key, p.value);
  }
}

export function checkTags(tags: readonly KeyValue[]): void {
  tags.forEach((t, i) => {
    checkKey('tags', t.key, i);
    if (typeof t.value !== 'string') throw badInput(`tags[${i}].value must be a string.`);
    if (t.value.length > LIMITS.tagValueLength)
      throw badInput(`tags[${i}] "${t.key}": its value is ${t.value.length} characters; at most ${LIMITS.tagValueLength}.`);
  });
}

export function checkMetrics(metrics: readonly MetricInput[]): void {
  metrics.forEach((m, i) => {
    checkKey('metrics', m.key, i);
    if (typeof m.value !== 'number') throw badInput(`metrics[${i}] "${m.key}": value must be a number (NaN and ±Infinity are kept), got ${typeof m.value}.`);
    if (m.step !== undefined && !Number.isSafeInteger(m.step)) throw badInput(`metrics[${i}] "${m.key}": step must be an integer.`);
    if (m.timestamp !== undefined && !Number.isSafeInteger(m.timestamp)) throw badInput(`metrics[${i}] "${m.key}": timestamp must be an integer (ms).`);
  });
}

/** MLflow's log-batch limits; a request over them is refused whole. */
export function checkBatch(batch: { metrics: readonly unknown[]; params: readonly unknown[]; tags: readonly unknown[] }): void {
  const { metrics, params, tags } = batch;
  const over = (what: string, n: number, max: number) =>
    badInput(`A batch logging request can contain at most ${max} ${what}. Got ${n} ${what}. Split them across several requests.`);
  if (metrics.length > LIMITS.batchMetrics) throw over('metrics', metrics.length, LIMITS.batchMetrics);
  if (params.length > LIMITS.batchParams) throw over('params', params.length, LIMITS.batchParams);
  if (tags.length > LIMITS.batchTags) throw over('tags', tags.length, LIMITS.batchTags);
  const total = metrics.length + params.length + tags.length;
  if (total > LIMITS.batchTotal) throw over('metrics, params and tags in total', total, LIMITS.batchTotal);
}

/** Stores params; an existing key with another value is refused (MLflow's params are immutable). */
export async function logParams(tx: Tx, { run, task }: Tracked, params: readonly KeyValue[]): Promise<void> {
  if (!params.length) return;
  const existing = await tx
    .select()
    .from(loggedParams)
    .where(
      and(
        eq(loggedParams.taskId, task.id),
        inArray(
          loggedParams.key,
          params.map((p) => p.key),
        ),
      ),
    );
  for (const old of existing) {
    const now = params.find((p) => p.key === old.key)!;
    if (now.value !== old.value)
      throw badInput(`Param "${old.key}" was already logged as "${old.value}": params cannot change (log "${now.value}" under another key).`);
  }
  await tx
    .insert(loggedParams)
    .values(params.map((p) => ({ taskId: task.id, runId: run.id, key: p.key, value: p.value })))
    .onConflictDoNothing();
  // An external run's params are its parameters, shown wherever a run's are.
  if (task.kind === 'external')
    await tx
      .update(runs)
      .set({ parameters: sql`${runs.parameters} || ${JSON.stringify(Object.fromEntries(params.map((p) => [p.key, p.value])))}::jsonb` })
      .where(eq(runs.id, run.id));
}

export async function setTags(tx: Tx, caller: Caller, { run }: Tracked, tags: readonly KeyValue[]): Promise<void> {
  if (!tags.length) return;
  const last = new Map(tags.map((t) => [t.key, t.value])); // the last value of a key in one request wins
  await tx
    .insert(runTags)
    .values([...last].map(([key, value]) => ({ runId: run.id, key, value, setBy: caller.identity.id })))
    .onConflictDoUpdate({ target: [runTags.runId, runTags.key], set: { value: sql`excluded.value`, setBy: sql`excluded.set_by`, setAt: sql`now()` } });
  const name = last.get('mlflow.runName');
  if (name) await tx.update(runs).set({ name }).where(eq(runs.id, run.id));
}

/**
 * MLflow points take `seq`s of their own range, ordered by arrival: at least the time in microseconds-ish (ms × 1000)
 * and after the task's last one; the executor reporter numbers its points from 1, so the ranges never meet. The
 * task row is locked by the caller, so two requests never take the same number.
 */
const SEQ_FLOOR = 1e15;
async function nextSeq(tx: Tx, taskId: string, attempt: number): Promise<number> {
  const [row] = await queryRows<{ max: string | null }>(
    tx,
    sql`select max(seq_hi)::text as max from metric_blocks where task_id = ${taskId} and attempt = ${attempt} and seq_hi >= ${SEQ_FLOOR}`,
  );
  const max = row?.max ? Number(row.max) : 0;
  return Math.max(max + 1, Date.now() * 1000, SEQ_FLOOR);
}

/** Stores the points (each numbered after the task's last) and returns them as stored. */
export async function logMetrics(tx: Tx, { run, task }: Tracked, metrics: readonly MetricInput[]): Promise<MetricPointInput[]> {
  if (!metrics.length) return [];
  // A task served from cache or reused never executed: its metrics are its source's (copied, and refreshed when the
  // source gains points), so points of its own would mix with them under the same names.
  const source = task.cacheSourceTaskId ?? task.reusedFromTaskId;
  if (source)
    throw badInput(
      `Run ${task.id} did not execute: it was ${task.cacheSourceTaskId ? 'served from cache by' : 'reused from'} task ${source}, whose metrics it shows. Log into ${source} (the run that executed), or a new run.`,
    );
  const attempt = Math.max(task.attempt, 1);
  const first = await nextSeq(tx, task.id, attempt);
  const points = metrics.map(
    (m, i): MetricPointInput => ({
      taskId: task.id,
      runId: run.id,
      attempt,
      seq: first + i,
      name: m.key,
      step: m.step ?? 0,
      value: m.value,
      at: new Date(m.timestamp ?? Date.now()),
    }),
  );
  await storeMetricPoints(tx, points);
  // A finished task's copies (cache hits and reruns of it) hold its summaries: they gain the new points too.
  if (task.status === 'SUCCEEDED') await refreshCopies(tx, [task.id]);
  return points;
}

/** log-batch (and each single log call): checked whole, then written in one transaction. */
export async function logBatch(
  db: Db,
  feed: LiveFeed,
  caller: Caller,
  taskId: string,
  batch: { metrics?: MetricInput[]; params?: KeyValue[]; tags?: KeyValue[] },
): Promise<Tracked> {
  const metrics = batch.metrics ?? [];
  const params = batch.params ?? [];
  const tags = batch.tags ?? [];
  checkBatch({ metrics, params, tags });
  checkMetrics(metrics);
  checkParams(params);
  checkTags(tags);
  return withLiveEvents(db, feed, async (tx, emit) => {
    const tracked = await findTracked(tx, caller, taskId, { lock: true });
    assertMayLog(caller, tracked);
    await logParams(tx, tracked, params);
    emit(...metricEvents(tracked, await logMetrics(tx, tracked, metrics)));
    await setTags(tx, caller, tracked, tags);
    return tracked;
  });
}

export async function deleteTag(db: Db, caller: Caller, taskId: string, key: string): Promise<void> {
  await db.transaction(async (tx) => {
    const tracked = await findTracked(tx, caller, taskId, { lock: true });
    assertMayLog(caller, tracked);
    const gone = await tx
      .delete(runTags)
      .where(and(eq(runTags.runId, tracked.run.id), eq(runTags.key, key)))
      .returning();
    if (!gone.length) throw badInput(`Run ${taskId} has no tag "${key}"; runs/get lists its tags.`);
  });
}

/** The run tag MLflow's servers keep a run's logged models in (mlflow.utils.mlflow_tags.MLFLOW_LOGGED_MODELS). */
export const LOGGED_MODELS_TAG = 'mlflow.log-model.history';

/**
 * MLflow's `runs/log-model` (what `mlflow.<flavor>.log_model` calls in MLflow 2 after uploading the model's files):
 * the model's summary appended to the run's `mlflow.log-model.history` tag, as MLflow's own server keeps it — run_id,
 * artifact_path, utc_time_created, model_uuid and its flavors without their `config` — within the tag's length limit.
 */
export async function logModelHistory(db: Db, caller: Caller, taskId: string, modelJson: string): Promise<void> {
  let model: Record<string, unknown>;
  try {
    model = JSON.parse(modelJson) as Record<string, unknown>;
  } catch {
    throw badInput('model_json must be JSON: the MLmodel as a JSON object, as MLflow clients send it.');
  }
  if (!model || typeof model !== 'object' || Array.isArray(model)) throw badInput('model_json must be a JSON object (an MLmodel).');
  assertWithinInputLimits(model, 'model_json'); // JSON inside a string: the body's own check never saw inside it
  // MLflow's server requires these (mlflow/server/handlers.py, _log_model).
  const missing = ['artifact_path', 'flavors', 'utc_time_created', 'run_id'].filter((k) => !(k in model));
  if (missing.length) throw badInput(`model_json is missing mandatory fields: ${missing.join(', ')}; add them (MLflow's Model.to_json writes them all).`);
  const summary: Record<string, unknown> = {};
  for (const key of ['run_id', 'artifact_path', 'utc_time_created', 'model_uuid']) if (key in model) summary[key] = model[key];
  const flavors = (model.flavors && typeof model.flavors === 'object' ? model.flavors : {}) as Record<string, unknown>;
  summary.flavors = Object.fromEntries(
    Object.entries(flavors).map(([name, config]) => [
      name,
      config && typeof config === 'object' && !Array.isArray(config) ? Object.fromEntries(Object.entries(config).filter(([k]) => k !== 'config')) : config,
    ]),
  );
  await retryingTransaction(db, async (tx) => {
    const tracked = await findTracked(tx, caller, taskId, { lock: true });
    assertMayLog(caller, tracked);
    const [previous] = await tx
      .select({ value: runTags.value })
      .from(runTags)
      .where(and(eq(runTags.runId, tracked.run.id), eq(runTags.key, LOGGED_MODELS_TAG)));
    let history: unknown[] = [];
    try {
      const parsed: unknown = previous ? JSON.parse(previous.value) : [];
      if (Array.isArray(parsed)) history = parsed;
    } catch {
      // someone set the tag by hand to something else: the history starts again
    }
    const tags = [{ key: LOGGED_MODELS_TAG, value: JSON.stringify([...history, summary]) }];
    checkTags(tags);
    await setTags(tx, caller, tracked, tags);
  });
}
