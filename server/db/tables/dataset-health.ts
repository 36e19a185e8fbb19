// What the platform knows of a dataset's health: each version's profile per column (what drift is computed from,
// never raw rows) and a dataset's freshness expectation with the state the freshness check last recorded.
import { integer, jsonb, pgTable, primaryKey, text, uuid } from 'drizzle-orm/pg-core';
import { at, createdAt } from './columns';
import { datasets, datasetVersions } from './governance';
import { identities } from './identities';

/** One column's profile of one dataset version (shape in server/governance/profiles.ts). */
export const datasetProfiles = pgTable(
  'dataset_profiles',
  {
    datasetVersionId: uuid('dataset_version_id')
      .notNull()
      .references(() => datasetVersions.id),
    column: text('column').notNull(),
    profile: jsonb('profile').$type<Record<string, unknown>>().notNull(),
    /** `given` with the version, or computed from its `sample`. */
    source: text('source', { enum: ['given', 'sample'] }).notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.datasetVersionId, t.column] })],
);

export const freshnessPolicies = ['WAIT', 'FAIL', 'IGNORE'] as const;
export type FreshnessPolicy = (typeof freshnessPolicies)[number];

/** How often a dataset expects a new version, what runs reading it do while it is late, and the recorded state. */
export const datasetFreshness = pgTable('dataset_freshness', {
  datasetId: uuid('dataset_id')
    .primaryKey()
    .references(() => datasets.id),
  expectedEverySeconds: integer('expected_every_seconds').notNull(),
  policy: text('policy', { enum: freshnessPolicies }).notNull(),
  /** With WAIT: how long a task waits for a fresh version before it fails. */
  maxWaitSeconds: integer('max_wait_seconds').notNull(),
  /** When the freshness check recorded the dataset late (null: on time as last recorded). */
  lateRecordedAt: at('late_recorded_at'),
  setBy: uuid('set_by').references(() => identities.id),
  updatedAt: at('updated_at').notNull().defaultNow(),
});

export type DatasetProfileRow = typeof datasetProfiles.$inferSelect;
export type DatasetFreshness = typeof datasetFreshness.$inferSelect;
