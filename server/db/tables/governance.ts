// Datasets with their columns and classification labels, declassification requests, and the audit log.
import { sql } from 'drizzle-orm';
import { index, integer, jsonb, pgTable, primaryKey, text, unique, uuid } from 'drizzle-orm/pg-core';
import { type DatasetColumn, type DatasetPartition, declassificationStates, domains } from '../../vocabulary';
import { at, createdAt, id } from './columns';
import { identities } from './identities';
import { teams } from './teams';

/** A dataset: `namespace/name`, owned by a domain, with versions. */
export const datasets = pgTable(
  'datasets',
  {
    id: id(),
    namespace: text('namespace').notNull(),
    name: text('name').notNull(),
    domain: text('domain', { enum: domains }).notNull(),
    description: text('description').notNull().default(''),
    createdBy: uuid('created_by').references(() => identities.id),
    createdAt: createdAt(),
    /** In the interactive catalog since (null: not published); see governance/catalog.ts. */
    catalogPublishedAt: at('catalog_published_at'),
    catalogPublishedBy: uuid('catalog_published_by').references(() => identities.id),
  },
  (t) => [unique('datasets_namespace_name_key').on(t.namespace, t.name)],
);

export const datasetVersions = pgTable(
  'dataset_versions',
  {
    id: id(),
    datasetId: uuid('dataset_id')
      .notNull()
      .references(() => datasets.id),
    version: integer('version').notNull(),
    columns: jsonb('columns').$type<DatasetColumn[]>().notNull(),
    /** Content digest of the data (`sha256:…`): what caching and lineage refer to, never a name or path. */
    digest: text('digest').notNull(),
    /** The task that wrote it, when a run did. */
    producedByTaskId: uuid('produced_by_task_id'),
    /** A few rows for previews in the catalog (at most 1,000), as column → value objects. */
    sample: jsonb('sample').$type<Record<string, unknown>[]>(),
    /** Its named partitions (files or prefixes of its data), what a batch workflow maps over; none: one whole. */
    partitions: jsonb('partitions').$type<DatasetPartition[]>().notNull().default([]),
    createdBy: uuid('created_by').references(() => identities.id),
    createdAt: createdAt(),
  },
  (t) => [unique('dataset_versions_dataset_version_key').on(t.datasetId, t.version)],
);

/**
 * The label of one column. `computed*` is what lineage propagation derived (null for a source dataset);
 * `level`/`categories` is the effective label, never below the computed one. No row: UNCLASSIFIED.
 */
export const columnLabels = pgTable(
  'column_labels',
  {
    datasetId: uuid('dataset_id')
      .notNull()
      .references(() => datasets.id),
    column: text('column').notNull(),
    level: text('level').notNull(),
    categories: text('categories').array().notNull().default(sql`'{}'::text[]`),
    computedLevel: text('computed_level'),
    computedCategories: text('computed_categories').array(),
    setBy: uuid('set_by').references(() => identities.id),
    reason: text('reason'),
    updatedAt: at('updated_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.datasetId, t.column] })],
);

/** Lowering a label: asked by one identity, decided by another. */
export const declassifications = pgTable(
  'declassifications',
  {
    id: id(),
    datasetId: uuid('dataset_id')
      .notNull()
      .references(() => datasets.id),
    column: text('column').notNull(),
    fromLevel: text('from_level').notNull(),
    fromCategories: text('from_categories').array().notNull(),
    toLevel: text('to_level').notNull(),
    toCategories: text('to_categories').array().notNull(),
    reason: text('reason').notNull(),
    state: text('state', { enum: declassificationStates }).notNull().default('PENDING'),
    requestedBy: uuid('requested_by')
      .notNull()
      .references(() => identities.id),
    decidedBy: uuid('decided_by').references(() => identities.id),
    createdAt: createdAt(),
    decidedAt: at('decided_at'),
  },
  (t) => [index('declassifications_dataset_idx').on(t.datasetId, t.state)],
);

/** Every allow and deny decision on data, and every change to grants, labels and memberships. */
export const auditEvents = pgTable(
  'audit_events',
  {
    id: id(),
    at: createdAt(),
    identityId: uuid('identity_id').references(() => identities.id),
    /** e.g. `label.set`, `declassification.approve`, `team.member.set`, `data.read`. */
    action: text('action').notNull(),
    decision: text('decision', { enum: ['allow', 'deny'] }).notNull(),
    /** What it was about: `dataset:ns/name.column`, `team:vision`, `namespace:ml`. */
    subject: text('subject').notNull(),
    /** The rule that decided it, in words a reviewer can check. */
    rule: text('rule').notNull(),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
  },
  (t) => [index('audit_events_at_idx').on(t.at.desc().nullsFirst()), index('audit_events_subject_idx').on(t.subject, t.at.desc().nullsFirst())],
);

/** A team may start runs in a domain (experimentation needs no grant). */
export const domainGrants = pgTable(
  'domain_grants',
  {
    teamId: uuid('team_id')
      .notNull()
      .references(() => teams.id),
    domain: text('domain', { enum: domains }).notNull(),
    grantedBy: uuid('granted_by').references(() => identities.id),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.domain] })],
);

export type Dataset = typeof datasets.$inferSelect;
export type DatasetVersion = typeof datasetVersions.$inferSelect;
export type ColumnLabel = typeof columnLabels.$inferSelect;
export type Declassification = typeof declassifications.$inferSelect;
export type AuditEvent = typeof auditEvents.$inferSelect;
