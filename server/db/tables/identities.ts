// Who calls the API: users and service accounts, each with a role. Teams and grants grow on this.
import { type AnyPgColumn, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { createdAt, id } from './columns';

export const identities = pgTable('identities', {
  id: id(),
  kind: text('kind', { enum: ['user', 'service'] }).notNull(),
  name: text('name').notNull().unique(),
  role: text('role', { enum: ['admin', 'member', 'viewer'] }).notNull(),
  /**
   * A service account's owner: the user it acts for, so the two-person rule and private cache namespaces see the
   * human behind it (server/auth/people.ts). Null for users, and for service accounts the platform made itself.
   */
  ownerId: uuid('owner_id').references((): AnyPgColumn => identities.id),
  createdAt: createdAt(),
});

export type Identity = typeof identities.$inferSelect;
export type NewIdentity = typeof identities.$inferInsert;
