// MLflow 3's search_logged_models: models of the given experiments whose source run's domain (a model logged outside a
// run: its own) the caller may read run data of, filtered by clauses joined with AND — attributes (`name`,
// `model_id`, `model_type`, `status`, `source_run_id`, `creation_timestamp`, `last_updated_timestamp`),
// `tags.<key>`, `params.<key>` and `metrics.<key>` (the source run's latest value) — ordered by `order_by` fields, a
// page at a time.
import { type SQL, sql } from 'drizzle-orm';
import { type Db, queryRows } from '../db/client';
import { type LoggedModel, loggedModels } from '../db/tables/logged-models';
import { badInput } from '../errors';
import { type Caller, readableDataDomains } from './access';
import { loggedModelsJson } from './logged-models';
import { decodeToken, encodeToken, splitAnd } from './mlflow';

const clauseRe =
  /^\s*(?:(metrics?|params?|tags?|attributes?)\.)?(`[^`]+`|"[^"]+"|[\w.\-:/ ]+?)\s*(<=|>=|!=|=|<|>|\bLIKE\b|\bILIKE\b)\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[-+]?(?:\d+\.?\d*(?:e[-+]?\d+)?|\.\d+))\s*$/i;
const unquote = (s: string) => (/^[`"']/.test(s) ? s.slice(1, -1) : s);

const attributes: Record<string, { column: SQL; numeric: boolean }> = {
  name: { column: sql`lm.name`, numeric: false },
  model_id: { column: sql`lm.id`, numeric: false },
  model_type: { column: sql`lm.model_type`, numeric: false },
  status: { column: sql`lm.status`, numeric: false },
  source_run_id: { column: sql`lm.task_id::text`, numeric: false },
  creation_timestamp: { column: sql`(extract(epoch from lm.created_at) * 1000)`, numeric: true },
  creation_time: { column: sql`(extract(epoch from lm.created_at) * 1000)`, numeric: true },
  last_updated_timestamp: { column: sql`(extract(epoch from lm.updated_at) * 1000)`, numeric: true },
};

function attribute(key: string) {
  const found = Object.hasOwn(attributes, key) ? attributes[key] : undefined;
  if (!found) throw badInput(`Unknown logged model attribute "${key}": use ${Object.keys(attributes).join(', ')}, or tags.<key>, params.<key>, metrics.<key>.`);
  return found;
}

function clauseSql(text: string, position: number): SQL {
  const m = clauseRe.exec(text);
  if (!m)
    throw badInput(
      `Filter clause ${position} "${text.trim()}" is not KEY OP VALUE (e.g. name = 'model', status = 'READY', params.alpha = '0.1', tags.team = 'a', metrics.acc > 0.9).`,
    );
  const entity = (m[1] ?? 'attributes').toLowerCase();
  const key = unquote(m[2]!.trim());
  const op = m[3]!.toUpperCase();
  const quoted = /^['"]/.test(m[4]!);
  let value: string | number = quoted ? unquote(m[4]!).replace(/\\(.)/g, '$1') : Number(m[4]);
  const opSql = sql.raw(op); // one of the operators the pattern allows
  if (entity.startsWith('metric')) {
    if (quoted || op.includes('LIKE')) throw badInput(`Filter clause ${position}: metrics compare with =, !=, <, <=, >, >= and a number.`);
    return sql`exists (select 1 from metric_summaries ms where ms.task_id = lm.task_id and ms.name = ${key} and ms.last ${opSql} ${value})`;
  }
  const textOps = ['=', '!=', 'LIKE', 'ILIKE'];
  if (entity.startsWith('param') || entity.startsWith('tag')) {
    if (!quoted) throw badInput(`Filter clause ${position}: ${entity} values are strings: quote them ('...').`);
    if (!textOps.includes(op)) throw badInput(`Filter clause ${position}: ${entity} compare with =, !=, LIKE or ILIKE.`);
    const column = entity.startsWith('param') ? sql`lm.params` : sql`lm.tags`;
    return sql`(${column} ->> ${key}) ${opSql} ${value}`;
  }
  const { column, numeric } = attribute(key.toLowerCase());
  if (numeric !== !quoted) throw badInput(`Filter clause ${position}: ${key} compares with ${numeric ? 'a number' : 'a quoted string'}.`);
  if (!numeric && !textOps.includes(op)) throw badInput(`Filter clause ${position}: ${key} compares with =, !=, LIKE or ILIKE.`);
  if (key.toLowerCase() === 'status') {
    const status = String(value)
      .toUpperCase()
      .replace(/^LOGGED_MODEL_/, '')
      .replace(/^UPLOAD_FAILED$/, 'FAILED');
    if (!['PENDING', 'READY', 'FAILED'].includes(status)) throw badInput(`Filter clause ${position}: status is one of PENDING, READY, FAILED.`);
    value = status;
  }
  return sql`${column} ${opSql} ${value}`;
}

export interface OrderBy {
  field_name?: unknown;
  ascending?: unknown;
}

function orderSql(orderBy: OrderBy[]): SQL[] {
  const order = orderBy.map((o, i) => {
    if (typeof o?.field_name !== 'string') throw badInput(`order_by[${i}].field_name must be a string (e.g. "metrics.acc" or "creation_timestamp").`);
    const dir = sql.raw(o.ascending === false ? 'DESC' : 'ASC');
    const m = /^(?:(metrics?|params?|tags?|attributes?)\.)?(.+)$/i.exec(o.field_name.trim())!;
    const entity = (m[1] ?? 'attributes').toLowerCase();
    const key = unquote(m[2]!);
    if (entity.startsWith('metric')) return sql`(select ms.last from metric_summaries ms where ms.task_id = lm.task_id and ms.name = ${key}) ${dir} nulls last`;
    if (entity.startsWith('param')) return sql`(lm.params ->> ${key}) ${dir} nulls last`;
    if (entity.startsWith('tag')) return sql`(lm.tags ->> ${key}) ${dir} nulls last`;
    return sql`${attribute(key.toLowerCase()).column} ${dir} nulls last`;
  });
  return [...order, sql`lm.created_at desc`, sql`lm.id`];
}

export interface SearchInput {
  experimentIds: string[];
  filter?: string;
  orderBy?: OrderBy[];
  maxResults?: number;
  pageToken?: string;
}

export const MAX_LOGGED_MODEL_RESULTS = 1000;

export async function searchLoggedModels(db: Db, caller: Caller, input: SearchInput) {
  const max = input.maxResults ?? 50;
  if (!Number.isSafeInteger(max) || max < 1 || max > MAX_LOGGED_MODEL_RESULTS) throw badInput(`max_results must be between 1 and ${MAX_LOGGED_MODEL_RESULTS}.`);
  const conditions = splitAnd(input.filter ?? '').map((c, i) => clauseSql(c, i + 1));
  const order = orderSql(input.orderBy ?? []);
  const offset = decodeToken(input.pageToken);
  const domains = readableDataDomains(caller);
  const experimentIds = input.experimentIds.filter((id) => /^[0-9a-f-]{36}$/i.test(id));
  if (!domains.length || !experimentIds.length) return { models: [] };
  const rows = await queryRows<LoggedModel & { id: string }>(
    db,
    sql`select lm.id from ${loggedModels} lm left join runs r on r.id = lm.run_id
      where lm.deleted_at is null
        and lm.experiment_id in (${sql.join(
          experimentIds.map((id) => sql`${id}::uuid`),
          sql`, `,
        )})
        and coalesce(r.domain, lm.domain) in (${sql.join(
          domains.map((d) => sql`${d}`),
          sql`, `,
        )})
        ${conditions.length ? sql`and ${sql.join(conditions, sql` and `)}` : sql``}
      order by ${sql.join(order, sql`, `)} limit ${max + 1} offset ${offset}`,
  );
  const ids = rows.slice(0, max).map((r) => r.id);
  const models = ids.length
    ? await db
        .select()
        .from(loggedModels)
        .where(
          sql`${loggedModels.id} in (${sql.join(
            ids.map((id) => sql`${id}`),
            sql`, `,
          )})`,
        )
    : [];
  const byId = new Map(models.map((m) => [m.id, m]));
  return {
    models: await loggedModelsJson(
      db,
      ids.map((id) => byId.get(id)!),
    ),
    next_page_token: rows.length > max ? encodeToken(offset + max) : undefined,
  };
}
