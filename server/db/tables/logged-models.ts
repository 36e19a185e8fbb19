// MLflow 3's logged models (`mlflow.<flavor>.log_model`): a model logged into an experiment, usually from a run (its
// source run, an Atelier task), with its own artifact space (`mlflow-artifacts:/<experiment>/models/<id>/artifacts`),
// free tags and immutable params, PENDING until its client finalizes it READY (or FAILED). Its files are bytes in the
// object store by digest, a row per path; once READY they no longer change, so a version registered from it
// (`models:/<id>`) names exactly them. Who may read and write one: server/tracking/logged-models.ts.
import { bigint, index, jsonb, pgTable, primaryKey, text, uuid } from 'drizzle-orm/pg-core';
import { domains } from '../../vocabulary';
import { at, createdAt } from './columns';
import { identities } from './identities';

export const loggedModelStatuses = ['PENDING', 'READY', 'FAILED'] as const;
export type LoggedModelStatus = (typeof loggedModelStatuses)[number];

export const loggedModels = pgTable(
  'logged_models',
  {
    /** `m-` and 32 hex digits, as MLflow names them. */
    id: text('id').primaryKey(),
    experimentId: uuid('experiment_id').notNull(),
    name: text('name').notNull(),
    /** The source run's task (an MLflow run_id) and its run; null for a model logged outside a run. */
    taskId: uuid('task_id'),
    runId: uuid('run_id'),
    /** The domain of a model logged outside a run (its source run's domain counts otherwise, as it is now). */
    domain: text('domain', { enum: domains }).notNull(),
    status: text('status', { enum: loggedModelStatuses }).notNull().default('PENDING'),
    statusMessage: text('status_message'),
    modelType: text('model_type'),
    /** The step at which its source run output it (MLflow's runs/outputs); null until the run says. */
    outputStep: bigint('output_step', { mode: 'number' }),
    tags: jsonb('tags').$type<Record<string, string>>().notNull().default({}),
    params: jsonb('params').$type<Record<string, string>>().notNull().default({}),
    createdBy: uuid('created_by').references(() => identities.id),
    createdAt: createdAt(),
    updatedAt: at('updated_at').notNull().defaultNow(),
    /** Set when deleted: it is then answered as missing. */
    deletedAt: at('deleted_at'),
  },
  (t) => [index('logged_models_experiment_idx').on(t.experimentId, t.createdAt), index('logged_models_task_idx').on(t.taskId)],
);

/** A logged model's files: relative `/`-separated paths, bytes in the object store by digest. */
export const loggedModelArtifacts = pgTable(
  'logged_model_artifacts',
  {
    modelId: text('model_id')
      .notNull()
      .references(() => loggedModels.id),
    path: text('path').notNull(),
    digest: text('digest').notNull(),
    size: bigint('size', { mode: 'number' }).notNull(),
    at: at('at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.modelId, t.path] })],
);

export type LoggedModel = typeof loggedModels.$inferSelect;
