// This control plane's installation: one row, made on first start, whose id tags what deployers create for it
// (server/deployments/orphans.ts), so two control planes sharing a backend never list, or stop, each other's.
// A restore of this database keeps it: the restored control plane is the same installation. The row also holds the
// orphan sweep's shared state: when the last pass was claimed (one replica per pass) and what it saw, and the
// database's incarnation (server/events/incarnation.ts), which a restore does change.
import { sql } from 'drizzle-orm';
import { boolean, check, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { createdAt } from './columns';

export const installation = pgTable(
  'installation',
  {
    /** Always true: the table holds one row. */
    one: boolean('one').primaryKey().default(true),
    id: uuid('id').notNull().defaultRandom(),
    createdAt: createdAt(),
    /** When a replica last claimed an orphan sweep (server/deployments/orphans.ts): one pass per interval among replicas. */
    orphansSweptAt: timestamp('orphans_swept_at', { withTimezone: true }),
    /** What the last sweep saw (OrphanSightings): the orphans by deployer with when first seen, and the deployers that cannot list. */
    orphanSightings: jsonb('orphan_sightings').notNull().default({}),
    /** This copy of the database's history: in every bus message id, drawn anew when `incarnationOf` no longer matches. */
    incarnation: uuid('incarnation').notNull().defaultRandom(),
    /** The physical database `incarnation` was drawn for (incarnation.ts databaseFingerprint); null until first read. */
    incarnationOf: text('incarnation_of'),
  },
  (t) => [check('installation_one_row', sql`${t.one}`)],
);
