// Modules (`namespace/name`), their immutable content-addressed versions, and movable tags with history.
import { bigint, index, jsonb, pgTable, primaryKey, text, unique, uuid } from 'drizzle-orm/pg-core';
import type { ModuleManifest, ModuleSource, ModuleTestResult } from '../../vocabulary';
import { at, createdAt, id } from './columns';
import { identities } from './identities';

export const modules = pgTable(
  'modules',
  {
    id: id(),
    namespace: text('namespace').notNull(),
    name: text('name').notNull(),
    description: text('description').notNull().default(''),
    createdAt: createdAt(),
  },
  (t) => [unique('modules_namespace_name_key').on(t.namespace, t.name)],
);

export const moduleVersions = pgTable(
  'module_versions',
  {
    id: id(),
    moduleId: uuid('module_id')
      .notNull()
      .references(() => modules.id),
    version: text('version').notNull(),
    digest: text('digest').notNull(),
    sizeBytes: bigint('size_bytes', { mode: 'number' }).notNull(),
    manifest: jsonb('manifest').$type<ModuleManifest>().notNull(),
    source: jsonb('source').$type<ModuleSource>().notNull().default({}),
    publishedBy: uuid('published_by').references(() => identities.id),
    /** The manifest's test command, when the publisher ran it (`push --test`). */
    testResult: jsonb('test_result').$type<ModuleTestResult>(),
    /** A deprecated version still runs where pinned, but no tag moves to it without `force`. */
    deprecatedAt: at('deprecated_at'),
    deprecatedBy: uuid('deprecated_by').references(() => identities.id),
    deprecationReason: text('deprecation_reason'),
    createdAt: createdAt(),
  },
  (t) => [unique('module_versions_module_version_key').on(t.moduleId, t.version), unique('module_versions_module_digest_key').on(t.moduleId, t.digest)],
);

/**
 * How many runs had a task pinned to each module version, and when the latest of them started: a rollup that each
 * run's start adds to (server/orchestrator/version-usage.ts), so the catalog shows usage without reading every task
 * ever run. Runs deleted later still count: they did use it.
 */
export const moduleVersionUsage = pgTable('module_version_usage', {
  moduleVersionId: uuid('module_version_id')
    .primaryKey()
    .references(() => moduleVersions.id, { onDelete: 'cascade' }),
  runs: bigint('runs', { mode: 'number' }).notNull(),
  lastUsedAt: at('last_used_at').notNull(),
});

export const moduleTags = pgTable(
  'module_tags',
  {
    moduleId: uuid('module_id')
      .notNull()
      .references(() => modules.id),
    tag: text('tag').notNull(),
    versionId: uuid('version_id')
      .notNull()
      .references(() => moduleVersions.id),
    updatedBy: uuid('updated_by').references(() => identities.id),
    updatedAt: at('updated_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.moduleId, t.tag] })],
);

/** Every move of a tag: who, from which version, to which, when and why. */
export const moduleTagEvents = pgTable(
  'module_tag_events',
  {
    id: id(),
    moduleId: uuid('module_id')
      .notNull()
      .references(() => modules.id),
    tag: text('tag').notNull(),
    fromVersionId: uuid('from_version_id').references(() => moduleVersions.id),
    toVersionId: uuid('to_version_id')
      .notNull()
      .references(() => moduleVersions.id),
    movedBy: uuid('moved_by').references(() => identities.id),
    /** `move` (publish, promote) or `rollback`: rolling back again walks further back past earlier rollbacks. */
    action: text('action', { enum: ['move', 'rollback'] })
      .notNull()
      .default('move'),
    reason: text('reason'),
    createdAt: createdAt(),
  },
  (t) => [index('module_tag_events_module_tag_idx').on(t.moduleId, t.tag, t.createdAt)],
);

/**
 * Git hook deliveries received recently, by sender and delivery id: a delivery seen again is a replay. Rows older
 * than the freshness window are deleted as new ones arrive (a delivery that old is refused as stale anyway).
 */
export const gitHookDeliveries = pgTable(
  'git_hook_deliveries',
  {
    identityId: uuid('identity_id')
      .notNull()
      .references(() => identities.id),
    deliveryId: text('delivery_id').notNull(),
    receivedAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.identityId, t.deliveryId] }), index('git_hook_deliveries_received_idx').on(t.receivedAt)],
);

export type Module = typeof modules.$inferSelect;
export type ModuleVersion = typeof moduleVersions.$inferSelect;
export type ModuleTag = typeof moduleTags.$inferSelect;
export type ModuleTagEvent = typeof moduleTagEvents.$inferSelect;
