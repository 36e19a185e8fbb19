// Who calls the API: users and service accounts, each with a role. Teams and grants grow on this.
import { pgTable, text } from 'drizzle-orm/pg-core';
import { createdAt, id } from './columns';

export const identities = pgTable('identities', {
  id: id(),
  kind: text('kind', { enum: ['user', 'service'] }).notNull(),
  name: text('name').notNull().unique(),
  role: text('role', { enum: ['admin', 'member', 'viewer'] }).notNull(),
  createdAt: createdAt(),
});

export type Identity = typeof identities.$inferSelect;
export type NewIdentity = typeof identities.$inferInsert;
