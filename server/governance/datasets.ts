// Datasets and their column labels: creating and versioning datasets, classifying columns (labels only go up
// without a second person), declassification with an approver who is not its author, lineage recomputation,
// and the audit record every one of these writes. Declassification (lowering a label) is in declassification.ts.
import { and, desc, eq, inArray } from 'drizzle-orm';
import { AuditedDenial, audit, audited } from '../audit/audit';
import type { AppAbility } from '../auth/ability';
import { type Db, retryingTransaction, type Tx } from '../db/client';
import { type ColumnLabel, columnLabels, type Dataset, type DatasetVersion, datasets, datasetVersions } from '../db/tables/governance';
import type { Identity } from '../db/tables/identities';
import { AtelierError, badInput, notFound } from '../errors';
import { parseModuleRef } from '../modules/ref';
import { datasetVersionSignal } from '../signals/sources';
import { assertMayWriteNamespace } from '../teams/teams';
import { type DatasetColumn, type DatasetPartition, type Domain, domains, type Label, type Level, levels, normaliseCategories } from '../vocabulary';
import { type CatalogCeiling, noSuchDataset, withdrawIfOutsideCeiling } from './catalog';
import { formatLabel, join, labelOf, leq, sameLabel } from './labels';
import { checkProfile, type DatasetProfile, storeProfile } from './profiles';

const nameRe = /^[a-z0-9][a-z0-9-_.]{0,62}$/;
const columnRe = /^[A-Za-z_][A-Za-z0-9_.$-]{0,255}$/;

export interface LabelInput {
  level: Level;
  categories?: string[];
}

export function checkLabel(input: LabelInput, path: string): Label {
  if (!levels.includes(input.level)) throw badInput(`${path}: level must be one of ${levels.join(', ')}.`);
  const { categories, bad } = normaliseCategories(input.categories ?? []);
  if (bad.length) throw badInput(`${path}: categories are upper-case words such as PII or CUSTOMER_DATA, not ${bad.map((b) => `"${b}"`).join(', ')}.`);
  return { level: input.level, categories };
}

export { labelOf };

export const computedOf = (row: ColumnLabel | undefined): Label | null =>
  row?.computedLevel ? { level: row.computedLevel as Label['level'], categories: row.computedCategories ?? [] } : null;

export async function datasetWithName(db: Db | Tx, namespace: string, name: string): Promise<Dataset | null> {
  const [row] = await db
    .select()
    .from(datasets)
    .where(and(eq(datasets.namespace, namespace), eq(datasets.name, name)));
  return row ?? null;
}

export async function findDataset(db: Db | Tx, fullName: string): Promise<Dataset> {
  const { namespace, name } = parseModuleRef(fullName);
  const row = await datasetWithName(db, namespace, name ?? '');
  if (!row) throw noSuchDataset(fullName);
  return row;
}

export interface CreateDatasetInput {
  name: string;
  domain: Domain;
  description?: string;
  columns: (DatasetColumn & { label?: LabelInput })[];
  digest: string;
  /** Up to 1,000 rows (column → value) for previews in the catalog. */
  sample?: Record<string, unknown>[];
  /** Per column, the version's profile (server/governance/profiles.ts); computed from `sample` when left out. */
  profile?: unknown;
  /** Its named partitions (files or prefixes of the data), what batch workflows map over. */
  partitions?: DatasetPartition[];
}

const partitionName = /^[A-Za-z0-9][A-Za-z0-9._=/-]{0,199}$/;

/** A version's partitions: at most 10,000, unique names, each with a content digest. */
export function checkPartitions(partitions: DatasetPartition[] | undefined): DatasetPartition[] {
  if (!partitions) return [];
  if (partitions.length > 10_000) throw badInput('A dataset version lists at most 10,000 partitions.');
  const seen = new Set<string>();
  return partitions.map((p, i) => {
    if (!partitionName.test(p.name)) throw badInput(`partitions.${i}.name "${p.name}" must be 1 to 200 letters, digits and . _ = / - (a file or prefix name).`);
    if (seen.has(p.name)) throw badInput(`partitions.${i}.name "${p.name}" is listed twice.`);
    seen.add(p.name);
    if (!/^sha256:[0-9a-f]{64}$/.test(p.digest)) throw badInput(`partitions.${i}.digest must be sha256:<64 hex digits>.`);
    if (p.rows !== undefined && p.rows !== null && (!Number.isInteger(p.rows) || p.rows < 0)) throw badInput(`partitions.${i}.rows must be a whole number.`);
    return { name: p.name, digest: p.digest, ...(typeof p.rows === 'number' ? { rows: p.rows } : {}) };
  });
}

/** Checks a version's columns, their labels, its digest and its sample; returns each column's label (null: none given). */
function checkVersion(input: Pick<CreateDatasetInput, 'columns' | 'digest' | 'sample' | 'profile'>): {
  labels: (Label | null)[];
  profile: DatasetProfile | undefined;
} {
  const labels = input.columns.map((c, i) => {
    if (!columnRe.test(c.name)) throw badInput(`columns.${i}.name "${c.name}" is not a column name.`);
    return c.label ? checkLabel(c.label, `columns.${i}.label`) : null;
  });
  if (new Set(input.columns.map((c) => c.name)).size !== input.columns.length) throw badInput('Column names must be unique.');
  if (!/^sha256:[0-9a-f]{64}$/.test(input.digest)) throw badInput('digest must be the content digest of the data, sha256:<64 hex digits>.');
  if (input.sample !== undefined && input.sample !== null) {
    const known = new Set(input.columns.map((c) => c.name));
    if (!Array.isArray(input.sample) || input.sample.length > 1000) throw badInput('sample is a list of at most 1,000 rows.');
    const bad = input.sample.findIndex((row) => typeof row !== 'object' || row === null || Array.isArray(row) || Object.keys(row).some((k) => !known.has(k)));
    if (bad >= 0) throw badInput(`sample.${bad} must be an object whose keys are the dataset's columns.`);
  }
  const profile =
    input.profile == null
      ? undefined
      : checkProfile(
          input.profile,
          input.columns.map((c) => c.name),
        );
  return { labels, profile };
}

/** Creates a dataset with its first version; columns given a label are classified, the rest stay UNCLASSIFIED. */
export async function createDataset(db: Db, ability: AppAbility, identity: Identity, input: CreateDatasetInput): Promise<Dataset> {
  const { namespace, name } = parseModuleRef(input.name);
  if (!name || !nameRe.test(namespace) || !nameRe.test(name) || input.name.includes('@'))
    throw badInput(`"${input.name}" is not a dataset name; use namespace/name in lowercase.`);
  if (!domains.includes(input.domain)) throw badInput(`domain must be one of ${domains.join(', ')}.`);
  const { labels, profile } = checkVersion(input);
  return db.transaction(async (tx) => {
    await assertMayWriteNamespace(tx, ability, namespace);
    const [dataset] = await tx
      .insert(datasets)
      .values({ namespace, name, domain: input.domain, description: input.description ?? '', createdBy: identity.id })
      .onConflictDoNothing()
      .returning();
    if (!dataset) throw new AtelierError('CONFLICT', `Dataset ${input.name} already exists; add a version to it with addDatasetVersion.`);
    const [first] = await tx
      .insert(datasetVersions)
      .values({
        datasetId: dataset.id,
        version: 1,
        columns: input.columns.map(({ name: n, type }) => ({ name: n, type })),
        digest: input.digest,
        sample: input.sample ?? null,
        partitions: checkPartitions(input.partitions),
        createdBy: identity.id,
      })
      .returning({ id: datasetVersions.id });
    await storeProfile(
      tx,
      first!.id,
      input.columns.map((c) => c.name),
      profile,
      input.sample,
    );
    const classified = input.columns.flatMap((c, i) =>
      labels[i]
        ? [{ datasetId: dataset.id, column: c.name, level: labels[i]!.level, categories: labels[i]!.categories, setBy: identity.id, reason: 'set at creation' }]
        : [],
    );
    if (classified.length) await tx.insert(columnLabels).values(classified);
    await audit(tx, {
      identity,
      action: 'dataset.create',
      decision: 'allow',
      subject: `dataset:${input.name}`,
      rule: `member of the team owning namespace "${namespace}"`,
      details: { domain: input.domain, columns: input.columns.length, classified: classified.length },
    });
    return dataset;
  });
}

/**
 * Records a new version of a registered dataset (a new snapshot of its data). Columns it keeps keep their labels;
 * a label given here classifies a column that has none (raising or lowering one is setColumnLabel's and
 * requestDeclassification's); new columns without one are UNCLASSIFIED, and may take it out of the catalog.
 * The same digest and columns as the latest version record nothing.
 */
export async function addDatasetVersion(
  db: Db,
  ability: AppAbility,
  identity: Identity,
  input: { name: string } & Pick<CreateDatasetInput, 'columns' | 'digest' | 'sample' | 'profile' | 'partitions'>,
  catalog: CatalogCeiling,
): Promise<{ dataset: Dataset; version: number; created: boolean }> {
  const { labels, profile } = checkVersion(input);
  const columns = input.columns.map(({ name, type }) => ({ name, type }));
  return db.transaction(async (tx) => {
    const dataset = await findDataset(tx, input.name);
    await assertMayWriteNamespace(tx, ability, dataset.namespace);
    const [locked] = await tx.select().from(datasets).where(eq(datasets.id, dataset.id)).for('update');
    const latest = await latestVersion(tx, dataset.id);
    if (latest.digest === input.digest && JSON.stringify(latest.columns) === JSON.stringify(columns))
      return { dataset: locked!, version: latest.version, created: false };
    const existing = new Map((await tx.select().from(columnLabels).where(eq(columnLabels.datasetId, dataset.id))).map((r) => [r.column, r]));
    const classified = input.columns.flatMap((c, i) => {
      const label = labels[i];
      if (!label) return [];
      const current = existing.get(c.name);
      if (current && !sameLabel(labelOf(current), label)) {
        throw badInput(
          `columns.${i}.label: ${c.name} is already ${formatLabel(labelOf(current))}; change it with setColumnLabel (up) or requestDeclassification (down).`,
        );
      }
      return current
        ? []
        : [
            {
              datasetId: dataset.id,
              column: c.name,
              level: label.level,
              categories: label.categories,
              setBy: identity.id,
              reason: `set with version ${latest.version + 1}`,
            },
          ];
    });
    const [added] = await tx
      .insert(datasetVersions)
      .values({
        datasetId: dataset.id,
        version: latest.version + 1,
        columns,
        digest: input.digest,
        sample: input.sample ?? null,
        partitions: checkPartitions(input.partitions),
        createdBy: identity.id,
      })
      .returning({ id: datasetVersions.id });
    await storeProfile(
      tx,
      added!.id,
      columns.map((c) => c.name),
      profile,
      input.sample,
    );
    if (classified.length) await tx.insert(columnLabels).values(classified);
    const newColumns = columns.filter((c) => !latest.columns.some((l) => l.name === c.name)).map((c) => c.name);
    await datasetVersionSignal(tx, {
      datasetId: dataset.id,
      namespace: dataset.namespace,
      name: dataset.name,
      version: latest.version + 1,
      digest: input.digest,
    });
    await audit(tx, {
      identity,
      action: 'dataset.version',
      decision: 'allow',
      subject: `dataset:${input.name}`,
      rule: `member of the team owning namespace "${dataset.namespace}"`,
      details: {
        version: latest.version + 1,
        digest: input.digest,
        added: newColumns,
        removed: latest.columns.filter((l) => !columns.some((c) => c.name === l.name)).map((l) => l.name),
        classified: classified.length,
      },
    });
    await withdrawIfOutsideCeiling(tx, dataset.id, catalog, identity, `version ${latest.version + 1}`);
    const [after] = await tx.select().from(datasets).where(eq(datasets.id, dataset.id));
    return { dataset: after!, version: latest.version + 1, created: true };
  });
}

/** The effective label of every column of a dataset (UNCLASSIFIED where none is set). */
export async function labelsOf(db: Db | Tx, datasetId: string, columns: string[]): Promise<Map<string, Label>> {
  const rows = await columnLabelRows(db, datasetId);
  const byColumn = new Map(rows.map((r) => [r.column, r]));
  return new Map(columns.map((c) => [c, labelOf(byColumn.get(c))]));
}

export interface ColumnView extends DatasetColumn {
  label: Label;
  /** What lineage propagation derived; null when nothing did. */
  computed: Label | null;
}

/** The latest version's columns of a dataset with their labels. */
export async function datasetColumns(db: Db, datasetId: string): Promise<ColumnView[]> {
  const latest: DatasetVersion | undefined = await latestVersion(db, datasetId);
  const byColumn = new Map((await columnLabelRows(db, datasetId)).map((r) => [r.column, r]));
  return (latest?.columns ?? []).map((c) => {
    const row = byColumn.get(c.name);
    return { ...c, label: labelOf(row), computed: computedOf(row) };
  });
}

/** Every column label row of a dataset (set and computed labels), in no particular order. */
export const columnLabelRows = (db: Db | Tx, datasetId: string): Promise<ColumnLabel[]> =>
  db.select().from(columnLabels).where(eq(columnLabels.datasetId, datasetId));

export async function latestVersion(db: Db | Tx, datasetId: string) {
  const [v] = await db.select().from(datasetVersions).where(eq(datasetVersions.datasetId, datasetId)).orderBy(desc(datasetVersions.version)).limit(1);
  return v!;
}

/** A column's label row, locked after its dataset's: every writer of labels takes the dataset first (docs/architecture.md). */
export async function lockLabel(tx: Tx, dataset: Dataset, column: string) {
  await tx.select({ id: datasets.id }).from(datasets).where(eq(datasets.id, dataset.id)).for('update');
  const version = await latestVersion(tx, dataset.id);
  if (!version.columns.some((c) => c.name === column)) throw notFound(`Dataset ${dataset.namespace}/${dataset.name} has no column "${column}".`);
  const [row] = await tx
    .select()
    .from(columnLabels)
    .where(and(eq(columnLabels.datasetId, dataset.id), eq(columnLabels.column, column)))
    .for('update');
  return row;
}

/**
 * Classifies a column, or raises its label. A label never goes below what lineage computed, and never goes
 * down at all here: lowering is a declassification that someone else approves.
 */
export async function setColumnLabel(
  db: Db,
  ability: AppAbility,
  identity: Identity,
  input: { dataset: string; column: string; label: LabelInput; reason?: string },
  catalog: CatalogCeiling,
): Promise<Label> {
  const wanted = checkLabel(input.label, 'label');
  return audited(db, () =>
    retryingTransaction(db, async (tx) => {
      const dataset = await findDataset(tx, input.dataset);
      await assertMayWriteNamespace(tx, ability, dataset.namespace);
      const row = await lockLabel(tx, dataset, input.column);
      const subject = `dataset:${input.dataset}.${input.column}`;
      const computed = computedOf(row);
      if (computed && !leq(computed, wanted)) {
        throw new AuditedDenial(
          {
            identity,
            action: 'label.set',
            decision: 'deny',
            subject,
            rule: 'a label is never below the one computed from lineage',
            details: { wanted: formatLabel(wanted), computed: formatLabel(computed) },
          },
          `${formatLabel(wanted)} is below ${formatLabel(computed)}, which lineage computed for ${input.dataset}.${input.column} from its sources; a label can never be below its computed one.`,
        );
      }
      const current = labelOf(row);
      if (row && !leq(current, wanted)) {
        throw new AuditedDenial(
          {
            identity,
            action: 'label.set',
            decision: 'deny',
            subject,
            rule: 'labels only go up without an approved declassification',
            details: { wanted: formatLabel(wanted), current: formatLabel(current) },
          },
          `${input.dataset}.${input.column} is ${formatLabel(current)}; lowering it to ${formatLabel(wanted)} is a declassification: request one (requestDeclassification) for someone else to approve.`,
        );
      }
      await writeLabel(tx, dataset.id, input.column, wanted, identity, input.reason ?? null);
      await audit(tx, {
        identity,
        action: 'label.set',
        decision: 'allow',
        subject,
        rule: row ? 'raising a label' : 'first classification',
        details: { from: formatLabel(current), to: formatLabel(wanted), reason: input.reason ?? null },
      });
      await withdrawIfOutsideCeiling(tx, dataset.id, catalog, identity, `${input.column} labelled ${formatLabel(wanted)}`);
      return wanted;
    }),
  );
}

export async function writeLabel(tx: Tx, datasetId: string, column: string, label: Label, identity: Identity | null, reason: string | null) {
  const values = { level: label.level, categories: label.categories, setBy: identity?.id ?? null, reason, updatedAt: new Date() };
  await tx
    .insert(columnLabels)
    .values({ datasetId, column, ...values })
    .onConflictDoUpdate({ target: [columnLabels.datasetId, columnLabels.column], set: values });
}

/**
 * Applies the labels lineage computed for a dataset's columns: labels only go up automatically (the effective
 * label becomes the join of what it was and what was computed); a computed label below a manual one leaves
 * the manual one.
 */
export async function recordComputedLabels(tx: Tx, datasetId: string, computed: Map<string, Label>, catalog: CatalogCeiling): Promise<void> {
  const rows = await tx
    .select()
    .from(columnLabels)
    .where(and(eq(columnLabels.datasetId, datasetId), inArray(columnLabels.column, [...computed.keys()])));
  const byColumn = new Map(rows.map((r) => [r.column, r]));
  for (const [column, label] of computed) {
    const row = byColumn.get(column);
    const effective = row ? join(labelOf(row), label) : label;
    const values = {
      level: effective.level,
      categories: effective.categories,
      computedLevel: label.level,
      computedCategories: label.categories,
      updatedAt: new Date(),
    };
    await tx
      .insert(columnLabels)
      .values({ datasetId, column, ...values, reason: 'computed from lineage' })
      .onConflictDoUpdate({ target: [columnLabels.datasetId, columnLabels.column], set: values });
  }
  // A new version's columns, and labels raised by lineage, may put the dataset outside the catalog's ceiling.
  await withdrawIfOutsideCeiling(tx, datasetId, catalog, null, 'labels computed from lineage for a new version');
}
