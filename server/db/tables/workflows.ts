// Workflows and their immutable, numbered spec versions.
import { integer, jsonb, pgTable, text, unique, uuid } from 'drizzle-orm/pg-core';
import { domains, type WorkflowSpec } from '../../vocabulary';
import { createdAt, id } from './columns';
import { identities } from './identities';
import { teams } from './teams';

export const workflows = pgTable('workflows', {
  id: id(),
  name: text('name').notNull().unique(),
  description: text('description').notNull().default(''),
  domain: text('domain', { enum: domains }).notNull(),
  latestVersion: integer('latest_version').notNull(),
  createdBy: uuid('created_by').references(() => identities.id),
  /** The owning team: its writing members (and admins) publish new versions. Null: its creator alone (and admins). */
  teamId: uuid('team_id').references(() => teams.id),
  createdAt: createdAt(),
});

export const workflowVersions = pgTable(
  'workflow_versions',
  {
    id: id(),
    workflowId: uuid('workflow_id')
      .notNull()
      .references(() => workflows.id),
    version: integer('version').notNull(),
    spec: jsonb('spec').$type<WorkflowSpec>().notNull(),
    digest: text('digest').notNull(),
    createdBy: uuid('created_by').references(() => identities.id),
    createdAt: createdAt(),
  },
  (t) => [unique('workflow_versions_workflow_version_key').on(t.workflowId, t.version)],
);

export type Workflow = typeof workflows.$inferSelect;
export type WorkflowVersion = typeof workflowVersions.$inferSelect;
