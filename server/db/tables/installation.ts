// This control plane's installation: one row, made on first start, whose id tags what deployers create for it
// (server/deployments/orphans.ts), so two control planes sharing a backend never list, or stop, each other's.
// A restore of this database keeps it: the restored control plane is the same installation.
import { sql } from 'drizzle-orm';
import { boolean, check, pgTable, uuid } from 'drizzle-orm/pg-core';
import { createdAt } from './columns';

export const installation = pgTable(
  'installation',
  {
    /** Always true: the table holds one row. */
    one: boolean('one').primaryKey().default(true),
    id: uuid('id').notNull().defaultRandom(),
    createdAt: createdAt(),
  },
  (t) => [check('installation_one_row', sql`${t.one}`)],
);
