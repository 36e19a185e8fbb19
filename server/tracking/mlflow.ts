// Atelier's tracked tasks as MLflow sees them: a run's `info` and `data` (latest metrics, params, tags), metric
// history, and run search with a small translator of MLflow's filter language (clauses joined by AND:
// `metrics.x > 1`, `params.x = 'y'`, `tags.x != 'y'`, `attributes.status = 'FINISHED'`, `run_name LIKE 'a%'`). An
// MLflow run is one task: an external run's task, or a module task of a workflow run. Search sees only runs whose
// run data the caller may read (a filter on an unreadable run's metric cannot reveal it).
import { and, asc, eq, inArray, isNotNull, isNull, type SQL, sql } from 'drizzle-orm';
import { type Db, queryRows } from '../db/client';
import { identities } from '../db/tables/identities';
import { loggedModels } from '../db/tables/logged-models';
import { type Run, runs, type Task, tasks } from '../db/tables/runs';
import { type Experiment, loggedParams, metricPoints, metricSummaries, runTags } from '../db/tables/tracking';
import { badInput } from '../errors';
import type { TaskStatus } from '../vocabulary';
import { type Caller, findTracked, readableDataDomains } from './access';
import { type RunInputsJson, runInputsOf } from './inputs';

export const mlflowStatusOf: Record<TaskStatus, string> = {
  PENDING: 'SCHEDULED',
  READY: 'SCHEDULED',
  QUEUED: 'SCHEDULED',
  RETRYING: 'SCHEDULED',
  RUNNING: 'RUNNING',
  SUCCEEDED: 'FINISHED',
  FAILED: 'FAILED',
  TIMED_OUT: 'FAILED',
  CANCELLED: 'KILLED',
  SKIPPED: 'KILLED',
};

/** A float as MLflow's JSON writes it: NaN and ±Infinity as strings (protobuf JSON). */
export const jsonFloat = (v: number): number | string => (Number.isFinite(v) ? v : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity');
const ms = (d: Date | null) => (d ? d.getTime() : undefined);

export const experimentJson = (e: Experiment) => ({
  experiment_id: e.id,
  name: e.name,
  artifact_location: `mlflow-artifacts:/${e.id}`,
  lifecycle_stage: e.deletedAt ? 'deleted' : 'active',
  creation_time: e.createdAt.getTime(),
  last_update_time: e.createdAt.getTime(),
  tags: Object.entries(e.tags).map(([key, value]) => ({ key, value })),
});

/** MLflow `Run` objects of these tasks, in the order given (tasks not found are left out). */
export async function mlflowRuns(db: Db, taskIds: string[]) {
  if (!taskIds.length) return [];
  const rows = await db
    .select({ task: tasks, run: runs, user: identities.name })
    .from(tasks)
    .innerJoin(runs, eq(runs.id, tasks.runId))
    .leftJoin(identities, eq(identities.id, runs.createdBy))
    .where(inArray(tasks.id, taskIds));
  const runIds = [...new Set(rows.map((r) => r.run.id))];
  const [summaries, params, tags, outputs, inputs] = await Promise.all([
    db.select().from(metricSummaries).where(inArray(metricSummaries.taskId, taskIds)),
    db.select().from(loggedParams).where(inArray(loggedParams.taskId, taskIds)),
    db.select().from(runTags).where(inArray(runTags.runId, runIds)),
    // MLflow 3's run outputs: the logged models the run output (runs/outputs), by step.
    db
      .select({ taskId: loggedModels.taskId, model_id: loggedModels.id, step: loggedModels.outputStep })
      .from(loggedModels)
      .where(and(inArray(loggedModels.taskId, taskIds), isNull(loggedModels.deletedAt), isNotNull(loggedModels.outputStep)))
      .orderBy(asc(loggedModels.createdAt)),
    runInputsOf(db, taskIds),
  ]);
  const byId = new Map(rows.map((r) => [r.task.id, r]));
  return taskIds.flatMap((id) => {
    const row = byId.get(id);
    if (!row) return [];
    return [
      runJson(row.task, row.run, row.user ?? '', {
        metrics: summaries.filter((s) => s.taskId === id),
        params: params.filter((p) => p.taskId === id),
        tags: tags.filter((t) => t.runId === row.run.id),
        outputs: outputs.filter((o) => o.taskId === id).map((o) => ({ model_id: o.model_id, step: o.step! })),
        inputs: inputs.get(id),
      }),
    ];
  });
}

function runJson(
  task: Task,
  run: Run,
  user: string,
  data: {
    metrics: (typeof metricSummaries.$inferSelect)[];
    params: { key: string; value: string }[];
    tags: { key: string; value: string }[];
    outputs: { model_id: string; step: number }[];
    inputs: RunInputsJson | undefined;
  },
) {
  // A module task's declared parameters are its params too (what it logged itself wins).
  const declared =
    task.kind === 'module' ? Object.entries(task.parameters).map(([key, v]) => ({ key, value: typeof v === 'string' ? v : JSON.stringify(v) })) : [];
  const params = new Map([...declared, ...data.params].map((p) => [p.key, p.value]));
  const name = task.kind === 'external' ? (run.name ?? '') : run.name ? `${run.name}/${task.node}` : task.node;
  return {
    info: {
      run_id: task.id,
      run_uuid: task.id,
      experiment_id: run.experimentId,
      run_name: name,
      user_id: user,
      status: mlflowStatusOf[task.status],
      start_time: ms(task.startedAt ?? run.createdAt),
      end_time: ms(task.finishedAt),
      artifact_uri: `mlflow-artifacts:/${run.experimentId}/${task.id}/artifacts`,
      lifecycle_stage: run.deletedAt ? 'deleted' : 'active',
    },
    data: {
      metrics: data.metrics.map((m) => ({ key: m.name, value: jsonFloat(m.last), timestamp: m.lastAt.getTime(), step: m.lastStep })),
      params: [...params].map(([key, value]) => ({ key, value })),
      tags: data.tags.map((t) => ({ key: t.key, value: t.value })),
    },
    ...(data.inputs ? { inputs: data.inputs } : {}),
    ...(data.outputs.length ? { outputs: { model_outputs: data.outputs } } : {}),
  };
}

export async function metricHistory(db: Db, caller: Caller, taskId: string, key: string, maxResults: number, pageToken: string | undefined) {
  await findTracked(db, caller, taskId);
  const offset = decodeToken(pageToken);
  // A task served from cache or reused has its source's points (inherit.ts).
  const [summary] = await db
    .select({ source: metricSummaries.sourceTaskId })
    .from(metricSummaries)
    .where(and(eq(metricSummaries.taskId, taskId), eq(metricSummaries.name, key)));
  const rows = await db
    .select()
    .from(metricPoints)
    .where(and(eq(metricPoints.taskId, summary?.source ?? taskId), eq(metricPoints.name, key)))
    .orderBy(asc(metricPoints.attempt), asc(metricPoints.seq))
    .limit(maxResults + 1)
    .offset(offset);
  const more = rows.length > maxResults;
  return {
    metrics: rows.slice(0, maxResults).map((p) => ({ key: p.name, value: jsonFloat(p.value), timestamp: p.at.getTime(), step: p.step })),
    next_page_token: more ? encodeToken(offset + maxResults) : undefined,
  };
}

export const encodeToken = (offset: number) => Buffer.from(JSON.stringify({ offset })).toString('base64url');
export function decodeToken(token: string | undefined): number {
  if (!token) return 0;
  try {
    const { offset } = JSON.parse(Buffer.from(token, 'base64url').toString());
    if (Number.isSafeInteger(offset) && offset >= 0) return offset;
  } catch {}
  throw badInput('page_token is not one this server gave: pass next_page_token from the previous page unchanged.');
}

// ---- search ----

const clauseRe =
  /^\s*(?:(metrics?|params?|parameters?|tags?|attributes?|attr|run)\.)?(`[^`]+`|"[^"]+"|[\w.\-:/ ]+?)\s*(<=|>=|!=|=|<|>|\bLIKE\b|\bILIKE\b)\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[-+]?(?:\d+\.?\d*(?:e[-+]?\d+)?|\.\d+))\s*$/i;
const unquote = (s: string) => (/^[`"']/.test(s) ? s.slice(1, -1) : s);

type Entity = 'metrics' | 'params' | 'tags' | 'attributes';
function entityOf(raw: string | undefined): Entity {
  const e = (raw ?? 'attributes').toLowerCase();
  if (e.startsWith('metric')) return 'metrics';
  if (e.startsWith('param')) return 'params';
  if (e.startsWith('tag')) return 'tags';
  return 'attributes';
}

const statusesOf = (mlflow: string): TaskStatus[] => (Object.keys(mlflowStatusOf) as TaskStatus[]).filter((s) => mlflowStatusOf[s] === mlflow);

function attributeColumn(key: string): { column: SQL; numeric: boolean } {
  switch (key) {
    case 'start_time':
      return { column: sql`(extract(epoch from coalesce(t.started_at, r.created_at)) * 1000)`, numeric: true };
    case 'end_time':
      return { column: sql`(extract(epoch from t.finished_at) * 1000)`, numeric: true };
    case 'run_name':
      return { column: sql`coalesce(r.name, t.node)`, numeric: false };
    case 'run_id':
      return { column: sql`t.id::text`, numeric: false };
    case 'status':
      return { column: sql`t.status`, numeric: false };
    default:
      // `datasets.name = 'x'` reaches here as an attribute named "datasets.name": it is an entity this API lacks.
      if (/^datasets?\./i.test(key)) throw badInput(`Filter on "${key}": ${DATASETS}.`);
      throw badInput(`Unknown attribute "${key}": filter on status, run_name, run_id, start_time or end_time.`);
  }
}

/**
 * What a clause that is no ENTITY.KEY OP VALUE uses that this API does not take, said with what to write instead:
 * MLflow's own grammar (OR, parentheses, IN, IS NULL, datasets.*) is more than this subset, and a caller who wrote
 * it is told so rather than only shown the shape.
 */
const DATASETS = 'datasets.* is not taken; filter on metrics.KEY, params.KEY, tags.KEY or attributes.KEY instead';
function unsupportedIn(clause: string): string {
  const bare = clause.replace(/'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`[^`]*`/g, "''"); // quoted values say nothing here
  if (/^\s*datasets?\./i.test(bare)) return `: ${DATASETS}`;
  if (/\bOR\b/i.test(bare)) return ': clauses join with AND only (MLflow has no OR either); search once per alternative';
  if (/[()]/.test(bare.replace(/\b(NOT\s+)?IN\s*\([^()]*\)/gi, ''))) return ': parentheses are not taken; write the clauses joined by AND';
  if (/\bIN\s*\(/i.test(bare)) return ': IN (…) is not taken; search once per value, or match several with LIKE';
  if (/\bIS\s+(NOT\s+)?NULL\b/i.test(bare)) return ': IS NULL is not taken; a metrics., params. or tags. clause matches only runs that have that key';
  return '';
}

/** One filter clause as SQL over `t` (tasks) and `r` (runs). */
function clauseSql(text: string, position: number): SQL {
  const m = clauseRe.exec(text);
  if (!m)
    throw badInput(
      `Filter clause ${position} "${text.trim()}" is not ENTITY.KEY OP VALUE (e.g. metrics.acc > 0.9, params.lr = '0.1', tags.team = 'a', attributes.status = 'FINISHED')${unsupportedIn(text)}.`,
    );
  const entity = entityOf(m[1]);
  const key = unquote(m[2]!.trim());
  const op = m[3]!.toUpperCase();
  const quoted = /^['"]/.test(m[4]!);
  const value = quoted ? unquote(m[4]!).replace(/\\(.)/g, '$1') : Number(m[4]);
  const opSql = sql.raw(op); // one of the operators the pattern allows
  if (entity === 'metrics') {
    if (quoted || op.includes('LIKE')) throw badInput(`Filter clause ${position}: metrics compare with =, !=, <, <=, >, >= and a number.`);
    return sql`exists (select 1 from metric_summaries ms where ms.task_id = t.id and ms.name = ${key} and ms.last ${opSql} ${value})`;
  }
  if (!quoted && entity !== 'attributes') throw badInput(`Filter clause ${position}: ${entity} values are strings: quote them ('...').`);
  if (entity !== 'attributes' && !['=', '!=', 'LIKE', 'ILIKE'].includes(op))
    throw badInput(`Filter clause ${position}: ${entity} compare with =, !=, LIKE or ILIKE.`);
  if (entity === 'params') return sql`exists (select 1 from logged_params lp where lp.task_id = t.id and lp.key = ${key} and lp.value ${opSql} ${value})`;
  if (entity === 'tags') return sql`exists (select 1 from run_tags rt where rt.run_id = r.id and rt.key = ${key} and rt.value ${opSql} ${value})`;
  const { column, numeric } = attributeColumn(key);
  if (numeric !== !quoted) throw badInput(`Filter clause ${position}: ${key} compares with ${numeric ? 'a number' : 'a quoted string'}.`);
  if (key === 'status') {
    if (op !== '=' && op !== '!=') throw badInput(`Filter clause ${position}: status compares with = or !=.`);
    const list = statusesOf(String(value).toUpperCase());
    if (!list.length) throw badInput(`Filter clause ${position}: status is one of RUNNING, SCHEDULED, FINISHED, FAILED, KILLED.`);
    const inList = sql`t.status in (${sql.join(
      list.map((s) => sql`${s}`),
      sql`, `,
    )})`;
    return op === '=' ? inList : sql`not ${inList}`;
  }
  return sql`${column} ${opSql} ${value}`;
}

/** Clauses split on AND outside quotes. */
export function filterSql(filter: string): SQL[] {
  return splitAnd(filter).map((p, i) => clauseSql(p, i + 1));
}

/** A filter's clauses: split on AND outside quotes (none for an empty filter). */
export function splitAnd(filter: string): string[] {
  if (!filter.trim()) return [];
  const parts: string[] = [];
  let current = '';
  let quote: string | null = null;
  for (let i = 0; i < filter.length; i++) {
    const c = filter[i]!;
    if (quote) {
      if (c === quote && filter[i - 1] !== '\\') quote = null;
    } else if (c === "'" || c === '"' || c === '`') quote = c;
    else if (/\s/.test(c) && /^\s+and\s/i.test(filter.slice(i))) {
      parts.push(current);
      current = '';
      i += /^\s+and/i.exec(filter.slice(i))![0].length - 1;
      continue;
    }
    current += c;
  }
  parts.push(current);
  return parts;
}

function orderSql(orderBy: string[]): SQL[] {
  const order = orderBy.map((raw) => {
    const m = /^\s*(?:(metrics?|params?|parameters?|tags?|attributes?|attr)\.)?(`[^`]+`|"[^"]+"|[\w.\-:/ ]+?)(?:\s+(ASC|DESC))?\s*$/i.exec(raw);
    if (!m) throw badInput(`order_by "${raw}" is not ENTITY.KEY [ASC|DESC] (e.g. metrics.acc DESC).`);
    const key = unquote(m[2]!.trim());
    const dir = sql.raw((m[3] ?? 'ASC').toUpperCase());
    const entity = entityOf(m[1]);
    if (entity === 'metrics') return sql`(select ms.last from metric_summaries ms where ms.task_id = t.id and ms.name = ${key}) ${dir} nulls last`;
    if (entity === 'params') return sql`(select lp.value from logged_params lp where lp.task_id = t.id and lp.key = ${key}) ${dir} nulls last`;
    if (entity === 'tags') return sql`(select rt.value from run_tags rt where rt.run_id = r.id and rt.key = ${key}) ${dir} nulls last`;
    return sql`${attributeColumn(key).column} ${dir} nulls last`;
  });
  return [...order, sql`coalesce(t.started_at, r.created_at) desc`, sql`t.id`];
}

export interface SearchInput {
  experimentIds: string[];
  filter?: string;
  orderBy?: string[];
  maxResults?: number;
  pageToken?: string;
  /** ACTIVE_ONLY (default), DELETED_ONLY or ALL. */
  viewType?: string;
}

export const MAX_SEARCH_RESULTS = 50_000;

export async function searchRuns(db: Db, caller: Caller, input: SearchInput) {
  const maxResults = input.maxResults ?? 1000;
  if (!Number.isSafeInteger(maxResults) || maxResults < 1 || maxResults > MAX_SEARCH_RESULTS)
    throw badInput(`max_results must be between 1 and ${MAX_SEARCH_RESULTS}.`);
  const domains = readableDataDomains(caller);
  const experimentIds = input.experimentIds.filter((id) => /^[0-9a-f-]{36}$/i.test(id));
  if (!domains.length || !experimentIds.length) return { runs: [] };
  const view = input.viewType ?? 'ACTIVE_ONLY';
  const conditions: SQL[] = [
    sql`t.kind in ('external', 'module')`,
    sql`r.experiment_id in (${sql.join(
      experimentIds.map((id) => sql`${id}::uuid`),
      sql`, `,
    )})`,
    sql`r.domain in (${sql.join(
      domains.map((d) => sql`${d}`),
      sql`, `,
    )})`,
    ...(view === 'ALL' ? [] : [view === 'DELETED_ONLY' ? sql`r.deleted_at is not null` : sql`r.deleted_at is null`]),
    ...filterSql(input.filter ?? ''),
  ];
  const offset = decodeToken(input.pageToken);
  const list = await queryRows<{ id: string }>(
    db,
    sql`select t.id from tasks t join runs r on r.id = t.run_id where ${sql.join(conditions, sql` and `)}
      order by ${sql.join(orderSql(input.orderBy ?? []), sql`, `)} limit ${maxResults + 1} offset ${offset}`,
  );
  const more = list.length > maxResults;
  return {
    runs: await mlflowRuns(
      db,
      list.slice(0, maxResults).map((r) => r.id),
    ),
    next_page_token: more ? encodeToken(offset + maxResults) : undefined,
  };
}
