// The interactive dataset catalog: a dataset is published to it only while every column of its latest version
// is classified and within the catalog's ceiling (a level, and categories it never shows); a change that puts
// a column outside (a raised label, lineage, a new version with unclassified columns) withdraws it. Every
// publication, refusal and withdrawal is audited.
import { and, desc, eq } from 'drizzle-orm';
import { AuditedDenial, audit, audited } from '../audit/audit';
import type { AppAbility } from '../auth/ability';
import type { Db, Tx } from '../db/client';
import { columnLabels, type Dataset, datasets, datasetVersions } from '../db/tables/governance';
import type { Identity } from '../db/tables/identities';
import { AtelierError, badInput, notFound } from '../errors';
import { assertMayWriteNamespace } from '../teams/teams';
import { type Label, type Level, levels } from '../vocabulary';
import { formatLabel, labelOf } from './labels';

/** A dataset name that names none: how to make it, from the CLI or the API (`atelier dataset list` lists the others). */
export const noSuchDataset = (fullName: string) =>
  notFound(
    `No dataset ${fullName}; create it with \`npx atelier dataset create ${fullName} --domain D --column name:type …\` or the createDataset mutation (\`atelier dataset list\` lists them).`,
  );

export interface CatalogCeiling {
  level: Level;
  deniedCategories: string[];
}

export interface CatalogBlocker {
  column: string;
  label: Label;
  /** Why it keeps the dataset out, and what to do. */
  reason: string;
}

export const formatCeiling = (c: CatalogCeiling) => `at most ${c.level}${c.deniedCategories.length ? `, never ${c.deniedCategories.join(', ')}` : ''}`;
const ceilingRule = (c: CatalogCeiling) => `the interactive catalog shows only classified columns ${formatCeiling(c)}`;
export const formatBlocker = (b: CatalogBlocker) => `${b.column} (${formatLabel(b.label)}): ${b.reason}`;

/** The columns that keep a dataset out of the catalog, in column order. */
export function catalogBlockers(labels: Map<string, Label>, ceiling: CatalogCeiling): CatalogBlocker[] {
  const blockers: CatalogBlocker[] = [];
  for (const [column, label] of labels) {
    if (label.level === 'UNCLASSIFIED') {
      blockers.push({ column, label, reason: 'UNCLASSIFIED; classify it with setColumnLabel' });
      continue;
    }
    const reasons: string[] = [];
    if (levels.indexOf(label.level) > levels.indexOf(ceiling.level)) reasons.push(`${label.level} is above the catalog ceiling ${ceiling.level}`);
    const denied = label.categories.filter((c) => ceiling.deniedCategories.includes(c));
    if (denied.length) reasons.push(`${denied.join(', ')} is never shown in the catalog`);
    if (reasons.length) blockers.push({ column, label, reason: `${reasons.join('; ')}; declassify it (requestDeclassification) or leave the dataset out` });
  }
  return blockers;
}

/** The labels of the latest version's columns (UNCLASSIFIED where none is set). */
async function latestLabels(db: Db | Tx, datasetId: string): Promise<Map<string, Label>> {
  const [[version], rows] = await Promise.all([
    db
      .select({ columns: datasetVersions.columns })
      .from(datasetVersions)
      .where(eq(datasetVersions.datasetId, datasetId))
      .orderBy(desc(datasetVersions.version))
      .limit(1),
    db.select().from(columnLabels).where(eq(columnLabels.datasetId, datasetId)),
  ]);
  const byColumn = new Map(rows.map((r) => [r.column, r]));
  return new Map((version?.columns ?? []).map((c) => [c.name, labelOf(byColumn.get(c.name))]));
}

export async function catalogBlockersOf(db: Db | Tx, datasetId: string, ceiling: CatalogCeiling): Promise<CatalogBlocker[]> {
  return catalogBlockers(await latestLabels(db, datasetId), ceiling);
}

async function lockDataset(tx: Tx, fullName: string): Promise<Dataset> {
  const slash = fullName.indexOf('/');
  if (slash < 1) throw badInput(`"${fullName}" is not a dataset name; use namespace/name.`);
  const [row] = await tx
    .select()
    .from(datasets)
    .where(and(eq(datasets.namespace, fullName.slice(0, slash)), eq(datasets.name, fullName.slice(slash + 1))))
    .for('update');
  if (!row) throw noSuchDataset(fullName);
  return row;
}

/**
 * Namespace writers only; a refusal is audited like every other catalog decision (inside `audited`; asking through
 * `Dataset.viewerCan` audits nothing).
 */
export async function assertMayManage(tx: Db | Tx, ability: AppAbility, identity: Identity | null, dataset: Dataset, action: string) {
  try {
    await assertMayWriteNamespace(tx, ability, dataset.namespace);
  } catch (error) {
    if (!(error instanceof AtelierError) || error.code !== 'FORBIDDEN') throw error;
    throw new AuditedDenial(
      { identity, action, decision: 'deny', subject: `dataset:${dataset.namespace}/${dataset.name}`, rule: `writers of namespace "${dataset.namespace}" only` },
      error.message,
    );
  }
}

/** Publishes a dataset to the interactive catalog (again: a no-op), or refuses naming every blocking column. */
export async function publishDatasetToCatalog(db: Db, ability: AppAbility, identity: Identity, ceiling: CatalogCeiling, name: string): Promise<Dataset> {
  return audited(db, () =>
    db.transaction(async (tx) => {
      const dataset = await lockDataset(tx, name);
      await assertMayManage(tx, ability, identity, dataset, 'catalog.publish');
      const subject = `dataset:${name}`;
      const blockers = await catalogBlockersOf(tx, dataset.id, ceiling);
      if (blockers.length) {
        throw new AuditedDenial(
          { identity, action: 'catalog.publish', decision: 'deny', subject, rule: ceilingRule(ceiling), details: { blockers: blockers.map(formatBlocker) } },
          `${name} cannot be published to the interactive catalog, which shows only classified columns ${formatCeiling(ceiling)}: ${blockers.map(formatBlocker).join('. ')}.`,
        );
      }
      if (dataset.catalogPublishedAt) return dataset;
      const [published] = await tx
        .update(datasets)
        .set({ catalogPublishedAt: new Date(), catalogPublishedBy: identity.id })
        .where(eq(datasets.id, dataset.id))
        .returning();
      await audit(tx, { identity, action: 'catalog.publish', decision: 'allow', subject, rule: ceilingRule(ceiling) });
      return published!;
    }),
  );
}

/** Takes a dataset out of the interactive catalog (not published: a no-op). */
export async function withdrawDatasetFromCatalog(db: Db, ability: AppAbility, identity: Identity, name: string, reason: string | null): Promise<Dataset> {
  return audited(db, () =>
    db.transaction(async (tx) => {
      const dataset = await lockDataset(tx, name);
      await assertMayManage(tx, ability, identity, dataset, 'catalog.withdraw');
      if (!dataset.catalogPublishedAt) return dataset;
      const [withdrawn] = await tx.update(datasets).set({ catalogPublishedAt: null, catalogPublishedBy: null }).where(eq(datasets.id, dataset.id)).returning();
      await audit(tx, {
        identity,
        action: 'catalog.withdraw',
        decision: 'allow',
        subject: `dataset:${name}`,
        rule: `writers of namespace "${dataset.namespace}" may withdraw`,
        details: { reason },
      });
      return withdrawn!;
    }),
  );
}

/**
 * After a label or a version changed (in `tx`): withdraws the dataset from the catalog if it is published and
 * a column is now outside the ceiling, audited with the cause. Labels changed by lineage have no identity.
 */
export async function withdrawIfOutsideCeiling(tx: Tx, datasetId: string, ceiling: CatalogCeiling, identity: Identity | null, cause: string): Promise<void> {
  const [dataset] = await tx.select().from(datasets).where(eq(datasets.id, datasetId)).for('update');
  if (!dataset?.catalogPublishedAt) return;
  const blockers = await catalogBlockersOf(tx, datasetId, ceiling);
  if (!blockers.length) return;
  await tx.update(datasets).set({ catalogPublishedAt: null, catalogPublishedBy: null }).where(eq(datasets.id, datasetId));
  await audit(tx, {
    identity,
    action: 'catalog.withdraw',
    decision: 'allow',
    subject: `dataset:${dataset.namespace}/${dataset.name}`,
    rule: `withdrawn automatically: ${ceilingRule(ceiling)}`,
    details: { cause, blockers: blockers.map(formatBlocker) },
  });
}
