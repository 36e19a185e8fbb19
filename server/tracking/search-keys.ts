// The metric, param and tag names a search names must each be had by some run the caller may read: a name no such run
// has (a typo in a dashboard filter or a script) would match nothing and read as "no runs", so it is refused with a
// typed error naming the nearest names those runs do have (server/errors/did-you-mean.ts, as the CLI says it). Only
// runs of readable domains, not deleted, count, for the check and for the names suggested: a name that only runs the
// caller may not read have is answered exactly as a name no run has. MLflow's REST search keeps MLflow's behaviour (an
// unknown name matches nothing) and does not come here.
import { type SQL, sql } from 'drizzle-orm';
import { type Db, queryRows } from '../db/client';
import { AtelierError } from '../errors';
import { nearestNames } from '../errors/did-you-mean';
import type { Domain } from '../vocabulary';
import type { Condition, Field, OrderKey } from './filter';

type KeyKind = 'metric' | 'param' | 'tag';
interface NamedKey {
  kind: KeyKind;
  name: string;
  /** Where the filter names it (1-based), or the orderBy key's index. */
  at: string;
}

const codes = { metric: 'UNKNOWN_METRIC', param: 'UNKNOWN_PARAM', tag: 'UNKNOWN_TAG' } as const;
const plural = { metric: 'metrics', param: 'params', tag: 'tags' } as const;
/** Names suggested at most, and names read to choose them from (the most used first). */
const SUGGESTED = 5;
const CANDIDATES = 2000;

/** The metric, param and tag names a filter and order name, once each, with where each first appears. */
export function namedKeys(condition: Condition | null, orders: readonly OrderKey[], orderGiven: boolean): NamedKey[] {
  const found = new Map<string, NamedKey>();
  const add = (field: Field, at: string) => {
    if (field.kind === 'attribute') return;
    const id = `${field.kind}:${field.name}`;
    if (!found.has(id)) found.set(id, { kind: field.kind, name: field.name, at });
  };
  const walk = (c: Condition) => {
    if ('left' in c) {
      walk(c.left);
      walk(c.right);
    } else add(c.field, `filter, column ${c.column}`);
  };
  if (condition) walk(condition);
  if (orderGiven) for (const [i, o] of orders.entries()) add(o.field, `orderBy[${i}]`);
  return [...found.values()];
}

const readableRuns = (readable: Domain[]) =>
  sql`r.deleted_at is null and r.domain in (${sql.join(
    readable.map((d) => sql`${d}`),
    sql`, `,
  )})`;

function had(key: NamedKey, readable: Domain[]): SQL {
  const visible = readableRuns(readable);
  if (key.kind === 'metric') return sql`exists (select 1 from run_metric_summaries m join runs r on r.id = m.run_id where m.name = ${key.name} and ${visible})`;
  if (key.kind === 'tag') return sql`exists (select 1 from run_tags t join runs r on r.id = t.run_id where t.key = ${key.name} and ${visible})`;
  // A declared param is a key of runs.parameters: `?` is answered by runs_parameters_idx (GIN), not a scan of the runs.
  return sql`(exists (select 1 from logged_params p join runs r on r.id = p.run_id where p.key = ${key.name} and ${visible})
    or exists (select 1 from runs r where r.parameters ? ${key.name} and ${visible}))`;
}

function known(kind: KeyKind, readable: Domain[]): SQL {
  const visible = readableRuns(readable);
  const names =
    kind === 'metric'
      ? sql`select m.name as name from run_metric_summaries m join runs r on r.id = m.run_id where ${visible}`
      : kind === 'tag'
        ? sql`select t.key as name from run_tags t join runs r on r.id = t.run_id where ${visible}`
        : sql`select p.key as name from logged_params p join runs r on r.id = p.run_id where ${visible}
            union all select jsonb_object_keys(r.parameters) as name from runs r where jsonb_typeof(r.parameters) = 'object' and ${visible}`;
  return sql`select name from (${names}) n group by name order by count(*) desc, name limit ${CANDIDATES}`;
}

/** Throws UNKNOWN_METRIC, UNKNOWN_PARAM or UNKNOWN_TAG for the first named key no readable run has; changes nothing. */
export async function assertKnownKeys(db: Db, readable: Domain[], keys: NamedKey[]): Promise<void> {
  if (!keys.length || !readable.length) return;
  const [row] = await queryRows<Record<string, boolean>>(
    db,
    sql`select ${sql.join(
      keys.map((k, i) => sql`${had(k, readable)} as ${sql.identifier(`k${i}`)}`),
      sql`, `,
    )}`,
  );
  const missing = keys.find((_, i) => !row?.[`k${i}`]);
  if (!missing) return;
  const names = (await queryRows<{ name: string }>(db, known(missing.kind, readable))).map((r) => r.name);
  const near = nearestNames(missing.name, names, SUGGESTED);
  const meant = near.closest ? ` Did you mean "${near.closest}"?` : '';
  const listed = near.names.length
    ? ` The nearest ${plural[missing.kind]} they have: ${near.names.map((n) => `"${n}"`).join(', ')}.`
    : ` They have no ${plural[missing.kind]}.`;
  const message = `No run you may read has ${missing.kind} "${missing.name}" (${missing.at}), so it would match nothing.${meant}${listed} Fix the name, or leave it out of the search.`;
  throw new AtelierError(codes[missing.kind], message, [{ path: missing.at, message: `unknown ${missing.kind} "${missing.name}"` }]);
}
