// `metricSeries`: a target's observations of one metric, per group of dimension values and per time bucket
// (count, mean, min, max, last), aggregated in SQL. A dimension named like a column of the target's data (a
// dataset's columns; the columns a model version's lineage read) follows the preview rule
// (server/governance/preview.ts): when the caller may not preview that column, the dimension is answered exactly as a
// dimension no observation has (one null group), so grouping is no oracle on the column.
import { type SQL, sql } from 'drizzle-orm';
import type { Grants } from '../auth/ability';
import { type Db, queryRows, type Tx } from '../db/client';
import { badInput, notFound } from '../errors';
import { readDenial } from '../governance/policy';
import { clearanceOf } from '../governance/preview';
import { type Caller, mayReadTarget } from './access';
import { columnsOfTarget, resolveTarget, type Target, type TargetRef } from './targets';

export interface SeriesInput {
  target: TargetRef;
  metric: string;
  groupBy?: string[] | null;
  /** Default: 24 hours before `until`. */
  since?: Date | null;
  /** Default: now. */
  until?: Date | null;
  /** Bucket width in seconds (default 3600). */
  bucketSeconds?: number | null;
}

export interface SeriesPoint {
  at: Date;
  count: number;
  mean: number;
  min: number;
  max: number;
  last: number;
}

export interface SeriesGroup {
  /** The grouped dimensions' values (null where an observation has none). */
  key: Record<string, string | null>;
  points: SeriesPoint[];
}

const MAX_BUCKETS = 10_000;
const MAX_GROUPS = 100;
const keyRe = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/** The answer a caller who may not read the target gets, whether or not it exists. */
export const noTarget = (ref: TargetRef) =>
  notFound(
    `No ${ref.kind} ${String(ref.ref).slice(0, 300)} that you may read; check its name (a model target names a version or an alias: ns/model@3, ns/model@champion).`,
  );

/** The target, when the caller may read it; NOT_FOUND (the same answer as for none) otherwise. */
export async function readableTarget(db: Db | Tx, caller: Caller, ref: TargetRef): Promise<Target> {
  const target = await resolveTarget(db, ref);
  if (!target || !(await mayReadTarget(db, caller, target))) throw noTarget(ref);
  return target;
}

/** Which observations are the target's: a version's include those made through an alias while it pointed at it. */
export function observationsOf(target: Pick<Target, 'kind' | 'id' | 'alias'>): SQL {
  if (target.kind === 'MODEL_VERSION') return sql`version_id = ${target.id}::uuid`;
  if (target.kind === 'ALIAS') return sql`target_kind = 'ALIAS' and target_id = ${target.id}::uuid and alias = ${target.alias}`;
  return sql`target_kind = ${target.kind} and target_id = ${target.id}::uuid`;
}

export async function metricSeries(db: Db, caller: Caller & { grants: Grants }, input: SeriesInput): Promise<SeriesGroup[]> {
  const groupBy = [...new Set(input.groupBy ?? [])];
  if (groupBy.length > 3) throw badInput(`groupBy takes at most 3 dimensions (got ${groupBy.length}).`);
  const bad = groupBy.find((k) => !keyRe.test(k));
  if (bad !== undefined) throw badInput(`groupBy: "${bad.slice(0, 80)}" is not a dimension name.`);
  const bucket = input.bucketSeconds ?? 3600;
  if (!Number.isInteger(bucket) || bucket < 1 || bucket > 31 * 86_400)
    throw badInput('bucketSeconds must be a whole number of seconds from 1 to 2678400 (31 days).');
  const until = input.until ?? new Date();
  const since = input.since ?? new Date(until.getTime() - 86_400_000);
  if (since >= until) throw badInput('since must be before until.');
  if ((until.getTime() - since.getTime()) / 1000 / bucket > MAX_BUCKETS)
    throw badInput(`That is more than ${MAX_BUCKETS} buckets: widen bucketSeconds or shorten the span.`);
  const target = await readableTarget(db, caller, input.target);
  // Dimensions named like a column the caller may not preview: answered as a dimension nobody sent.
  const withheld = new Set<string>();
  if (groupBy.length) {
    const clearance = clearanceOf(caller.identity, caller.grants);
    for (const { column, label } of await columnsOfTarget(db, target)) if (groupBy.includes(column) && readDenial(clearance, label)) withheld.add(column);
  }
  const keyExpr = groupBy.length
    ? sql.join(
        groupBy.map((k) => (withheld.has(k) ? sql`${k}::text, null::text` : sql`${k}::text, dimensions ->> ${k}::text`)),
        sql`, `,
      )
    : sql``;
  const rows = await queryRows<{ key: unknown; bucket: string | Date; count: string | number; mean: number; min: number; max: number; last: number }>(
    db,
    sql`select jsonb_build_object(${keyExpr}) as key, to_timestamp(floor(extract(epoch from at) / ${bucket}::int) * ${bucket}::int) as bucket,
          count(*) as count, avg(value) as mean, min(value) as min, max(value) as max, (array_agg(value order by at desc, id desc))[1] as last
        from observations
        where ${observationsOf(target)} and metric = ${input.metric} and at >= ${since.toISOString()}::timestamptz and at < ${until.toISOString()}::timestamptz
        group by 1, 2 order by 1, 2 limit ${MAX_BUCKETS * 10}`,
  );
  const groups = new Map<string, SeriesGroup>();
  for (const row of rows) {
    const key = (typeof row.key === 'string' ? JSON.parse(row.key) : row.key) as Record<string, string | null>;
    const id = JSON.stringify(groupBy.map((k) => key[k] ?? null));
    let group = groups.get(id);
    if (!group) {
      if (groups.size >= MAX_GROUPS) continue;
      groups.set(id, (group = { key, points: [] }));
    }
    group.points.push({
      at: new Date(row.bucket),
      count: Number(row.count),
      mean: Number(row.mean),
      min: Number(row.min),
      max: Number(row.max),
      last: Number(row.last),
    });
  }
  return [...groups.values()];
}
