// Teams, their members with a role each, and the module namespaces they own.
import { index, pgTable, primaryKey, text, uuid } from 'drizzle-orm/pg-core';
import { teamRoles } from '../../vocabulary';
import { createdAt, id } from './columns';
import { identities } from './identities';

export const teams = pgTable('teams', {
  id: id(),
  name: text('name').notNull().unique(),
  description: text('description').notNull().default(''),
  createdAt: createdAt(),
});

/** A user or service account in a team. Service accounts join teams like people do: that is how CI publishes. */
export const teamMembers = pgTable(
  'team_members',
  {
    teamId: uuid('team_id')
      .notNull()
      .references(() => teams.id),
    identityId: uuid('identity_id')
      .notNull()
      .references(() => identities.id),
    role: text('role', { enum: teamRoles }).notNull(),
    addedBy: uuid('added_by').references(() => identities.id),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.identityId] }), index('team_members_identity_idx').on(t.identityId)],
);

/** A module namespace (`vision` in `vision/resnet`) and the team that owns it. */
export const namespaces = pgTable(
  'namespaces',
  {
    name: text('name').primaryKey(),
    teamId: uuid('team_id')
      .notNull()
      .references(() => teams.id),
    createdBy: uuid('created_by').references(() => identities.id),
    createdAt: createdAt(),
  },
  (t) => [index('namespaces_team_idx').on(t.teamId)],
);

export type Team = typeof teams.$inferSelect;
export type TeamMember = typeof teamMembers.$inferSelect;
export type Namespace = typeof namespaces.$inferSelect;
