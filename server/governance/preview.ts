// Dataset previews for people: a few sample rows, only the columns the caller's clearance admits. The columns
// are CASL fields (`can('read', 'DatasetRows', [columns], { dataset })`), so what a preview shows is decided
// by `permittedFieldsOf`, and a withheld column can be used neither to filter, to sort nor to group (an oracle
// otherwise).
import { AbilityBuilder, createMongoAbility, type ForcedSubject, type MongoAbility, subject } from '@casl/ability';
import { permittedFieldsOf } from '@casl/ability/extra';
import { and, desc, eq, sql } from 'drizzle-orm';
import { type AuditEntry, auditRow } from '../audit/audit';
import type { Grants } from '../auth/ability';
import { refuse } from '../auth/refuse';
import type { Db } from '../db/client';
import { auditEvents, columnLabels, datasets, datasetVersions } from '../db/tables/governance';
import type { Identity } from '../db/tables/identities';
import { badInput, notFound } from '../errors';
import type { Domain, Label } from '../vocabulary';
import { labelOf } from './datasets';
import { readDenial } from './policy';

interface DatasetRows {
  dataset: string;
}
export type ColumnAbility = MongoAbility<['read', 'DatasetRows' | (DatasetRows & ForcedSubject<'DatasetRows'>)]>;

/** The domain whose read policy is a person's clearance: production with a grant (or as admin), else experimentation. */
export function clearanceOf(identity: Pick<Identity, 'role'>, grants: Grants): Domain {
  return identity.role === 'admin' || grants.domains.includes('production') ? 'production' : 'experimentation';
}

/** One rule per dataset, listing explicitly the columns `clearance` may read (none: no rule, so deny). */
export function defineColumnAbility(clearance: Domain, catalog: { dataset: string; labels: Map<string, Label> }[]): ColumnAbility {
  const { can, build } = new AbilityBuilder<ColumnAbility>(createMongoAbility);
  for (const { dataset, labels } of catalog) {
    const fields = [...labels].filter(([, label]) => !readDenial(clearance, label)).map(([column]) => column);
    if (fields.length) can('read', 'DatasetRows', fields, { dataset });
  }
  return build();
}

export function permittedColumns(ability: ColumnAbility, dataset: string, all: string[]): string[] {
  return permittedFieldsOf(ability, 'read', subject('DatasetRows', { dataset }), { fieldsFrom: (rule) => rule.fields ?? all });
}

export interface PreviewInput {
  dataset: string;
  /** Default: every column. */
  columns?: string[];
  where?: { column: string; equals: unknown }[];
  orderBy?: { column: string; descending?: boolean };
  /** Counts per distinct value of these columns instead of rows (`[]`: one group, the count of all rows). */
  groupBy?: string[];
  limit?: number;
}

export interface Preview {
  columns: string[];
  /** Asked for (or in the dataset) but not readable at the caller's clearance: named, never shown. */
  withheld: string[];
  rows: Record<string, unknown>[];
  /** With `groupBy`: the grouped columns' values (`key`) and how many sample rows have them; rows are then empty. */
  groups: { key: Record<string, unknown>; count: number }[] | null;
}

/**
 * A preview of a dataset's sample rows; `authorize: false` only for the benchmark's baseline, which makes the
 * same two reads. Authorization adds no statement of its own: the labels come with the first read (the dataset,
 * its latest version's columns), and the allow record is written by the second (the sample) in the same
 * statement, so it is durable before any row is returned and no rows are read unless it was written.
 */
export async function previewDataset(
  db: Db,
  caller: { identity: Identity; grants: Grants },
  input: PreviewInput,
  options: { authorize?: boolean } = {},
): Promise<Preview> {
  const authorize = options.authorize !== false;
  const limit = Math.min(Math.max(input.limit ?? 20, 1), 100);
  const slash = input.dataset.indexOf('/');
  if (slash < 1) throw badInput(`"${input.dataset}" is not a dataset name; use namespace/name.`);
  const [head] = await db
    .select({
      versionId: datasetVersions.id,
      columns: datasetVersions.columns,
      ...(authorize ? { labels: labelsOfDataset } : {}),
    })
    .from(datasets)
    .innerJoin(datasetVersions, eq(datasetVersions.datasetId, datasets.id))
    .where(and(eq(datasets.namespace, input.dataset.slice(0, slash)), eq(datasets.name, input.dataset.slice(slash + 1))))
    .orderBy(desc(datasetVersions.version))
    .limit(1);
  if (!head) throw notFound(`No dataset ${input.dataset}; \`atelier dataset list\` lists the ones you may read.`);
  const all = head.columns.map((c) => c.name);
  const groupBy = input.groupBy ? [...new Set(input.groupBy)] : null;
  // Columns the request computes with (an oracle on each when withheld), beside those it only shows.
  const used = [...(input.where ?? []).map((w) => w.column), ...(input.orderBy ? [input.orderBy.column] : []), ...(groupBy ?? [])];
  const unknown = [...(input.columns ?? []), ...used].filter((c) => !all.includes(c));
  if (unknown.length) throw badInput(`${input.dataset} has no column ${[...new Set(unknown)].join(', ')}.`);
  if (groupBy && input.orderBy && !groupBy.includes(input.orderBy.column))
    throw badInput(`With groupBy, orderBy must name a grouped column (${groupBy.join(', ') || 'none'}); groups are otherwise largest first.`);
  const wanted = input.columns ?? all;
  let readable = all;
  let allow: AuditEntry | null = null;
  if (authorize) {
    const rows = parseLabels((head as { labels?: unknown }).labels);
    const labels = new Map(all.map((c) => [c, labelOf(rows.get(c))]));
    const clearance = clearanceOf(caller.identity, caller.grants);
    readable = permittedColumns(defineColumnAbility(clearance, [{ dataset: input.dataset, labels }]), input.dataset, all);
    const oracles = [...new Set(used.filter((c) => !readable.includes(c)))];
    if (oracles.length) {
      await refuse(
        db,
        {
          identity: caller.identity,
          action: 'data.preview',
          subject: `dataset:${input.dataset}`,
          rule: 'a withheld column can be used neither to filter, to sort nor to group',
          details: { columns: oracles, clearance },
        },
        `${oracles.join(', ')} cannot be used to filter, sort or group: not readable at your clearance.`,
      );
    }
    const details = groupBy ? { groupBy } : { shown: wanted.filter((c) => readable.includes(c)) };
    allow = {
      identity: caller.identity,
      action: 'data.preview',
      decision: 'allow',
      subject: `dataset:${input.dataset}`,
      rule: `columns within the ${clearance} read policy`,
      details,
    };
  }
  // With authorization, one statement writes the allow record and reads the sample: the record commits with
  // the read or neither happens (Postgres runs a data-modifying WITH once, to completion, read or not).
  const reader = allow ? db.with(db.$with('recorded').as(db.insert(auditEvents).values(auditRow(allow)))) : db;
  const [version] = await reader.select({ sample: datasetVersions.sample }).from(datasetVersions).where(eq(datasetVersions.id, head.versionId));
  const shown = wanted.filter((c) => readable.includes(c));
  let rows = version?.sample ?? [];
  for (const w of input.where ?? []) rows = rows.filter((r) => JSON.stringify(r[w.column] ?? null) === JSON.stringify(w.equals ?? null));
  if (input.orderBy && !groupBy) {
    const { column, descending } = input.orderBy;
    rows = [...rows].sort((a, b) => compare(a[column], b[column]) * (descending ? -1 : 1));
  }
  const withheld = all.filter((c) => !readable.includes(c) && (input.columns ? input.columns.includes(c) : true));
  if (groupBy) return { columns: groupBy, withheld, rows: [], groups: groupRows(rows, groupBy, input.orderBy).slice(0, limit) };
  return { columns: shown, withheld, rows: rows.slice(0, limit).map((r) => Object.fromEntries(shown.map((c) => [c, r[c] ?? null]))), groups: null };
}

/**
 * Counts per distinct key, largest first (or by `orderBy`, a grouped column). Small groups are not suppressed:
 * every grouped column is one the caller may read row by row in the same preview, so a count reveals nothing
 * the rows do not.
 */
function groupRows(rows: Record<string, unknown>[], columns: string[], orderBy: PreviewInput['orderBy']): { key: Record<string, unknown>; count: number }[] {
  const groups = new Map<string, { key: Record<string, unknown>; count: number }>();
  for (const row of rows) {
    const key = Object.fromEntries(columns.map((c) => [c, row[c] ?? null]));
    const id = JSON.stringify(columns.map((c) => key[c]));
    const group = groups.get(id);
    if (group) group.count++;
    else groups.set(id, { key, count: 1 });
  }
  const list = [...groups.values()];
  if (orderBy) return list.sort((a, b) => compare(a.key[orderBy.column], b.key[orderBy.column]) * (orderBy.descending ? -1 : 1));
  return list.sort((a, b) => b.count - a.count || compare(JSON.stringify(Object.values(a.key)), JSON.stringify(Object.values(b.key))));
}

/** Every label of the dataset in the row, as `[[column, level, categories], …]` (a subquery: no round trip). */
const labelsOfDataset = sql<unknown>`(select coalesce(json_agg(json_build_array(${columnLabels.column}, ${columnLabels.level}, ${columnLabels.categories})), '[]'::json) from ${columnLabels} where ${columnLabels.datasetId} = ${datasets.id})`;

function parseLabels(raw: unknown): Map<string, { level: string; categories: string[] }> {
  const list = (typeof raw === 'string' ? JSON.parse(raw) : raw) as [string, string, string[]][];
  return new Map(list.map(([column, level, categories]) => [column, { level, categories }]));
}

function compare(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1;
  if (b === null || b === undefined) return -1;
  return typeof a === 'number' && typeof b === 'number' ? a - b : String(a).localeCompare(String(b));
}
