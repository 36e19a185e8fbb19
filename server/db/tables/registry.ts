// The model registry: registered models (`namespace/name`, owned by the namespace's team), their immutable,
// content-addressed versions with the lineage recorded at registration, aliases with their history, promotion
// requests, and the registry's own event log (written in the transaction of each change; see server/registry/).
import { sql } from 'drizzle-orm';
import { bigserial, index, integer, jsonb, pgTable, primaryKey, text, unique, uuid } from 'drizzle-orm/pg-core';
import { aliasActions, domains, type ModelFile, type ModelRequirement, promotionStates } from '../../vocabulary';
import { at, createdAt, id } from './columns';
import { datasets } from './governance';
import { identities } from './identities';

export const registeredModels = pgTable(
  'registered_models',
  {
    id: id(),
    namespace: text('namespace').notNull(),
    name: text('name').notNull(),
    description: text('description').notNull().default(''),
    /** Bounds on evaluation metrics a version must meet to be promoted to production. */
    requirements: jsonb('requirements').$type<ModelRequirement[]>().notNull().default([]),
    createdBy: uuid('created_by').references(() => identities.id),
    createdAt: createdAt(),
  },
  (t) => [unique('registered_models_namespace_name_key').on(t.namespace, t.name)],
);

export const modelVersions = pgTable(
  'model_versions',
  {
    id: id(),
    modelId: uuid('model_id')
      .notNull()
      .references(() => registeredModels.id),
    version: integer('version').notNull(),
    /** sha256 over the sorted (path, digest) of its files: the same content is the same version. */
    digest: text('digest').notNull(),
    files: jsonb('files').$type<ModelFile[]>().notNull(),
    flavor: text('flavor'),
    signature: jsonb('signature').$type<Record<string, unknown>>(),
    metadata: jsonb('metadata').$type<Record<string, unknown>>().notNull().default({}),
    /** The producing task, its run and the run's domain (a version's lineage is that domain's run data). */
    taskId: uuid('task_id').notNull(),
    runId: uuid('run_id').notNull(),
    domain: text('domain', { enum: domains }).notNull(),
    /** The task output (a task output name or an artifact folder) it was registered from. */
    output: text('output').notNull(),
    cacheKey: text('cache_key'),
    deprecatedAt: at('deprecated_at'),
    deprecatedBy: uuid('deprecated_by').references(() => identities.id),
    deprecationReason: text('deprecation_reason'),
    createdBy: uuid('created_by').references(() => identities.id),
    createdAt: createdAt(),
  },
  (t) => [
    unique('model_versions_model_version_key').on(t.modelId, t.version),
    unique('model_versions_model_digest_key').on(t.modelId, t.digest),
    index('model_versions_task_idx').on(t.taskId),
  ],
);

/** Each dataset version column that flowed into a model version (through its task and the task's upstreams). */
export const modelVersionInputs = pgTable(
  'model_version_inputs',
  {
    modelVersionId: uuid('model_version_id')
      .notNull()
      .references(() => modelVersions.id),
    datasetId: uuid('dataset_id')
      .notNull()
      .references(() => datasets.id),
    datasetVersion: integer('dataset_version').notNull(),
    column: text('column').notNull(),
    /** The task (of the producing run) that read it. */
    taskId: uuid('task_id').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.modelVersionId, t.datasetId, t.datasetVersion, t.column] }),
    index('model_version_inputs_dataset_idx').on(t.datasetId, t.datasetVersion),
  ],
);

/** The model versions a version was derived from: read by a task upstream of the one that produced it (a fine-tune's
 * base model, a distilled teacher, a batch task's pinned model). Their columns read are copied into the version's own
 * model_version_inputs at registration, so its label and backward lineage include what they learned. */
export const modelVersionParents = pgTable(
  'model_version_parents',
  {
    modelVersionId: uuid('model_version_id')
      .notNull()
      .references(() => modelVersions.id),
    parentVersionId: uuid('parent_version_id')
      .notNull()
      .references(() => modelVersions.id),
    /** The task (of the producing run) that read it, and the port it took it as. */
    taskId: uuid('task_id').notNull(),
    port: text('port').notNull(),
  },
  (t) => [primaryKey({ columns: [t.modelVersionId, t.parentVersionId, t.taskId, t.port] }), index('model_version_parents_parent_idx').on(t.parentVersionId)],
);

export const modelAliases = pgTable(
  'model_aliases',
  {
    modelId: uuid('model_id')
      .notNull()
      .references(() => registeredModels.id),
    alias: text('alias').notNull(),
    /** Fixed when the alias is first set: moves in `production` need an approved promotion. */
    domain: text('domain', { enum: domains }).notNull(),
    versionId: uuid('version_id')
      .notNull()
      .references(() => modelVersions.id),
    updatedBy: uuid('updated_by').references(() => identities.id),
    updatedAt: at('updated_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.modelId, t.alias] })],
);

export const modelAliasEvents = pgTable(
  'model_alias_events',
  {
    id: id(),
    modelId: uuid('model_id')
      .notNull()
      .references(() => registeredModels.id),
    alias: text('alias').notNull(),
    domain: text('domain', { enum: domains }).notNull(),
    fromVersionId: uuid('from_version_id'),
    toVersionId: uuid('to_version_id').notNull(),
    movedBy: uuid('moved_by').references(() => identities.id),
    action: text('action', { enum: aliasActions }).notNull(),
    reason: text('reason').notNull().default(''),
    promotionId: uuid('promotion_id'),
    createdAt: createdAt(),
  },
  (t) => [index('model_alias_events_alias_idx').on(t.modelId, t.alias, t.createdAt.desc().nullsFirst())],
);

export const modelPromotions = pgTable(
  'model_promotions',
  {
    id: id(),
    modelId: uuid('model_id')
      .notNull()
      .references(() => registeredModels.id),
    versionId: uuid('version_id')
      .notNull()
      .references(() => modelVersions.id),
    alias: text('alias').notNull(),
    domain: text('domain', { enum: domains }).notNull(),
    reason: text('reason').notNull(),
    state: text('state', { enum: promotionStates }).notNull().default('PENDING'),
    requestedBy: uuid('requested_by')
      .notNull()
      .references(() => identities.id),
    decidedBy: uuid('decided_by').references(() => identities.id),
    decisionReason: text('decision_reason'),
    createdAt: createdAt(),
    decidedAt: at('decided_at'),
  },
  (t) => [index('model_promotions_model_idx').on(t.modelId, t.state)],
);

/** The registry's events, numbered: written with each change, for subscribers and webhooks to read in order. */
export const registryEvents = pgTable(
  'registry_events',
  {
    seq: bigserial('seq', { mode: 'number' }).primaryKey(),
    type: text('type').notNull(),
    modelId: uuid('model_id').notNull(),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`),
    actorId: uuid('actor_id'),
    createdAt: createdAt(),
  },
  (t) => [index('registry_events_model_idx').on(t.modelId, t.seq)],
);

export type RegisteredModel = typeof registeredModels.$inferSelect;
export type ModelVersion = typeof modelVersions.$inferSelect;
export type ModelAlias = typeof modelAliases.$inferSelect;
export type ModelAliasEvent = typeof modelAliasEvents.$inferSelect;
export type ModelPromotion = typeof modelPromotions.$inferSelect;
export type RegistryEvent = typeof registryEvents.$inferSelect;
