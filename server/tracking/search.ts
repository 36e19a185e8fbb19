// searchRuns: a parsed filter and order (filter.ts) compiled to ONE SQL query over runs, their metric summaries,
// params and tags, with keyset pages. Governance comes first: only runs in domains whose run data the caller may read
// (and not deleted) are ever candidates, so a filter or order on a metric of any other run cannot tell it exists.
// Values always travel as bind parameters; only operators from a fixed list are written into the text.
import { and, eq, inArray, isNull, or, type SQL, sql } from 'drizzle-orm';
import { alias, type PgColumn } from 'drizzle-orm/pg-core';
import type { Db } from '../db/client';
import { type Run, runs } from '../db/tables/runs';
import { experiments, loggedParams, runMetricSummaries, runTags } from '../db/tables/tracking';
import { workflows } from '../db/tables/workflows';
import { badInput } from '../errors';
import type { Domain } from '../vocabulary';
import type { Condition, Field, Literal, OrderKey } from './filter';
import { assertKnownKeys, namedKeys } from './search-keys';

type KeyType = 'float8' | 'text' | 'timestamptz' | 'uuid';
interface SortKey {
  expr: SQL;
  type: KeyType;
  descending: boolean;
}

/** The joins a query needs, one per metric, param and tag name it names (made once however often it is named). */
class Sources {
  readonly joins: { table: never; on: SQL }[] = [];
  private readonly metrics = new Map<string, { last: SQL; min: SQL; max: SQL }>();
  private readonly params = new Map<string, SQL>();
  private readonly tags = new Map<string, SQL>();
  private workflow?: SQL;
  private experiment?: SQL;
  constructor(private readonly db: Db) {}

  /**
   * A run's value of a metric, over its tasks: `last` is the last value most recently reported by any task, `min` the
   * least minimum and `max` the greatest maximum. NaN counts as no value (it matches no comparison and sorts last).
   */
  metric(name: string, aggregate: 'last' | 'min' | 'max'): SQL {
    let m = this.metrics.get(name);
    if (!m) {
      // The run's own summary row (kept by storeMetricPoints), by index: NaN is already null there.
      const r = alias(runMetricSummaries, `m${this.metrics.size}`);
      this.joins.push({ table: r as never, on: and(eq(r.runId, runs.id), eq(r.name, name))! });
      m = { last: sql`${r.last}`, min: sql`${r.min}`, max: sql`${r.max}` };
      this.metrics.set(name, m);
    }
    return m[aggregate];
  }

  /** A run's param as text: the value its start declared, else the one a task logged (the least, if several did). */
  param(name: string): SQL {
    let p = this.params.get(name);
    if (!p) {
      const as = `p${this.params.size}`;
      const sub = this.db
        .select({ runId: loggedParams.runId, value: sql<string>`min(${loggedParams.value})`.as(`${as}_value`) })
        .from(loggedParams)
        .where(eq(loggedParams.key, name))
        .groupBy(loggedParams.runId)
        .as(as);
      this.joins.push({ table: sub as never, on: eq(sub.runId, runs.id) });
      p = sql`coalesce(${runs.parameters} ->> ${name}, ${sub.value})`;
      this.params.set(name, p);
    }
    return p;
  }

  tag(name: string): SQL {
    let t = this.tags.get(name);
    if (!t) {
      const a = alias(runTags, `t${this.tags.size}`);
      this.joins.push({ table: a as never, on: and(eq(a.runId, runs.id), eq(a.key, name))! });
      t = sql`${a.value}`;
      this.tags.set(name, t);
    }
    return t;
  }

  attribute(name: string): { expr: SQL; type: KeyType } {
    const column = (c: PgColumn, type: KeyType = 'text') => ({ expr: sql`${c}`, type });
    switch (name) {
      case 'status':
        return column(runs.status);
      case 'trigger':
        return column(runs.trigger);
      case 'domain':
        return column(runs.domain);
      case 'name':
        return column(runs.name);
      case 'created':
        return column(runs.createdAt, 'timestamptz');
      case 'started':
        return column(runs.startedAt, 'timestamptz');
      case 'finished':
        return column(runs.finishedAt, 'timestamptz');
      case 'workflow':
        if (!this.workflow) {
          this.joins.push({ table: workflows as never, on: eq(workflows.id, runs.workflowId) });
          this.workflow = sql`${workflows.name}`;
        }
        return { expr: this.workflow, type: 'text' };
      default:
        if (!this.experiment) {
          this.joins.push({ table: experiments as never, on: eq(experiments.id, runs.experimentId) });
          this.experiment = sql`${experiments.name}`;
        }
        return { expr: this.experiment, type: 'text' };
    }
  }

  /** The field's value as text, or as a number for a metric (a param compared with numbers: see numeric). */
  value(field: Field): { expr: SQL; type: KeyType } {
    if (field.kind === 'metric') return { expr: this.metric(field.name, field.aggregate), type: 'float8' };
    if (field.kind === 'param') return { expr: this.param(field.name), type: 'text' };
    if (field.kind === 'tag') return { expr: this.tag(field.name), type: 'text' };
    return this.attribute(field.name);
  }
}

/** Text that reads as a number, as float8; anything else null (never a cast error, whatever a param holds). */
const numeric = (text: SQL) => sql`(case when ${text} ~ '^\\s*[-+]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?\\s*$' then (${text})::float8 end)`;

const operators = { '=': '=', '!=': '<>', '<': '<', '<=': '<=', '>': '>', '>=': '>=' } as const;

/** A literal as a bind parameter of the field's type. */
function bind(literal: Literal, type: KeyType): SQL {
  if (type === 'float8') return sql`${literal.value}::float8`;
  if (type === 'timestamptz') return sql`${new Date(String(literal.value)).toISOString()}::timestamptz`;
  return sql`${String(literal.value)}`;
}

function compile(condition: Condition, sources: Sources): SQL {
  if ('left' in condition) return sql`(${compile(condition.left, sources)} ${sql.raw(condition.kind)} ${compile(condition.right, sources)})`;
  let { expr, type } = sources.value(condition.field);
  const values = condition.kind === 'compare' ? [condition.value] : condition.kind === 'in' ? condition.values : [];
  // A param compared with numbers is compared as a number (lr < 0.1 holds for '0.05'); with text, as text.
  if (condition.field.kind === 'param' && values.length && values.every((v) => v.kind === 'number')) {
    expr = numeric(expr);
    type = 'float8';
  }
  if (condition.kind === 'compare') return sql`(${expr} ${sql.raw(operators[condition.op])} ${bind(condition.value, type)})`;
  if (condition.kind === 'like') {
    const like = sql`(${expr}) ${sql.raw(condition.caseInsensitive ? 'ilike' : 'like')} ${condition.pattern}`;
    return condition.negated ? sql`not (${like})` : like;
  }
  const list = sql`(${expr}) in (${sql.join(
    condition.values.map((v) => bind(v, type)),
    sql`, `,
  )})`;
  return condition.negated ? sql`not ${list}` : list;
}

/** A field's sort keys: a param sorts by its number (if it reads as one), then by its text. */
function sortKeys(order: OrderKey, sources: Sources): SortKey[] {
  const { expr, type } = sources.value(order.field);
  if (order.field.kind === 'param')
    return [
      { expr: numeric(expr), type: 'float8', descending: order.descending },
      { expr, type: 'text', descending: order.descending },
    ];
  return [{ expr, type, descending: order.descending }];
}

/** A cursor: the text of each sort key of the last row of a page, then its id. */
export const encodeSearchCursor = (values: (string | null)[]) => Buffer.from(JSON.stringify(values)).toString('base64url');

const validText: Record<KeyType, (v: string) => boolean> = {
  float8: (v) => /^(-?Infinity|[-+0-9.eE]+)$/.test(v),
  timestamptz: (v) => !Number.isNaN(Date.parse(v.replace(' ', 'T'))) || /^[0-9-]+ [0-9:.+-]+$/.test(v),
  text: () => true,
  uuid: (v) => /^[0-9a-f-]{36}$/i.test(v),
};

function decodeCursor(cursor: string, keys: SortKey[]): (string | null)[] {
  let values: unknown;
  try {
    values = JSON.parse(Buffer.from(cursor, 'base64url').toString());
  } catch {
    values = null;
  }
  const fits =
    Array.isArray(values) && values.length === keys.length && values.every((v, i) => v === null || (typeof v === 'string' && validText[keys[i]!.type](v)));
  if (!fits) throw badInput('The cursor does not belong to this search: pass back an endCursor or startCursor of the same filter and orderBy.');
  return values as (string | null)[];
}

/** Rows past `cursor` in the order of `keys` (missing values last, whatever the direction); `backward`: before it. */
function beyond(keys: SortKey[], cursor: (string | null)[], backward: boolean): SQL {
  const alternatives: SQL[] = [];
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const c = cursor[i];
    const equal = keys.slice(0, i).map((k, j) => (cursor[j] === null ? sql`${k.expr} is null` : sql`${k.expr} = ${cursor[j]}::${sql.raw(k.type)}`));
    const later = key.descending !== backward ? '<' : '>';
    let past: SQL | undefined;
    if (c === null) past = backward ? sql`${key.expr} is not null` : undefined;
    else {
      const strictly = sql`${key.expr} ${sql.raw(later)} ${c}::${sql.raw(key.type)}`;
      past = backward ? strictly : sql`(${strictly} or ${key.expr} is null)`;
    }
    if (past) alternatives.push(and(...equal, past)!);
  }
  return alternatives.length ? or(...alternatives)! : sql`false`;
}

export interface SearchPageArgs {
  after?: string;
  before?: string;
  limit: number;
  inverted: boolean;
}

export type FoundRun = Run & { searchCursor: string };

/**
 * One page of runs matching `filter`, in `orderBy` order (default: newest first), among runs of `readable` domains. A
 * metric, param or tag that no such run has is refused (search-keys.ts), not matched against nothing.
 */
export async function searchRuns(db: Db, readable: Domain[], filter: string, orderBy: readonly string[], page: SearchPageArgs): Promise<FoundRun[]> {
  if (orderBy.length > 5) throw badInput(`orderBy takes at most 5 keys; got ${orderBy.length}.`);
  // The parser (chevrotain) is loaded on the first search, not at start: it alone takes ~1 s to load and build.
  const { parseFilter, parseOrderKey } = await import('./filter');
  const condition = parseFilter(filter);
  const orders = orderBy.length
    ? orderBy.map((text, i) => parseOrderKey(text, i))
    : [{ field: { kind: 'attribute', name: 'created' }, descending: true } as OrderKey];
  await assertKnownKeys(db, readable, namedKeys(condition, orders, orderBy.length > 0));
  const sources = new Sources(db);
  const keys = orders.flatMap((o) => sortKeys(o, sources));
  keys.push({ expr: sql`${runs.id}`, type: 'uuid', descending: keys[0]!.descending });
  const conditions: (SQL | undefined)[] = [inArray(runs.domain, readable.length ? readable : ['experimentation']), isNull(runs.deletedAt)];
  if (!readable.length) conditions.push(sql`false`);
  if (condition) conditions.push(compile(condition, sources));
  if (page.after) conditions.push(beyond(keys, decodeCursor(page.after, keys), false));
  if (page.before) conditions.push(beyond(keys, decodeCursor(page.before, keys), true));
  const selection = Object.fromEntries(keys.map((k, i) => [`k${i}`, sql<string | null>`(${k.expr})::text`]));
  let query = db
    .select({ run: runs, ...selection })
    .from(runs)
    .$dynamic();
  for (const join of sources.joins) query = query.leftJoin(join.table, join.on);
  const flip = page.inverted;
  const rows = await query
    .where(and(...conditions))
    .orderBy(...keys.map((k) => sql`${k.expr} ${sql.raw(k.descending !== flip ? 'desc' : 'asc')} ${sql.raw(flip ? 'nulls first' : 'nulls last')}`))
    .limit(page.limit);
  return rows.map((row) => {
    const r = row as unknown as Record<string, string | null> & { run: Run };
    return { ...r.run, searchCursor: encodeSearchCursor(keys.map((_, i) => r[`k${i}`] ?? null)) };
  });
}
