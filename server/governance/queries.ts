// Reads of governance records for the API: datasets by id and by filter, a dataset's versions, declassification
// requests and the audit log. Who may read them is decided by the caller's ability, not here.
import { and, asc, desc, eq, gte, inArray, isNotNull, isNull } from 'drizzle-orm';
import type { Db } from '../db/client';
import {
  type AuditEvent,
  auditEvents,
  type Dataset,
  type DatasetVersion,
  type Declassification,
  datasets,
  datasetVersions,
  declassifications,
} from '../db/tables/governance';
import type { Domain } from '../vocabulary';

export const datasetsByIds = (db: Db, ids: string[]): Promise<Dataset[]> => db.select().from(datasets).where(inArray(datasets.id, ids));

/** Datasets by namespace and name (at most 1,000): of one domain, and published to the catalog (true) or not (false). */
export function listDatasets(db: Db, filter: { domain?: Domain | null; catalog?: boolean | null }): Promise<Dataset[]> {
  const published =
    filter.catalog === true ? isNotNull(datasets.catalogPublishedAt) : filter.catalog === false ? isNull(datasets.catalogPublishedAt) : undefined;
  return db
    .select()
    .from(datasets)
    .where(and(filter.domain ? eq(datasets.domain, filter.domain) : undefined, published))
    .orderBy(asc(datasets.namespace), asc(datasets.name))
    .limit(1000);
}

/** A dataset's latest 50 versions, newest first. */
export const datasetVersionsOf = (db: Db, datasetId: string): Promise<DatasetVersion[]> =>
  db.select().from(datasetVersions).where(eq(datasetVersions.datasetId, datasetId)).orderBy(desc(datasetVersions.version)).limit(50);

/** Declassification requests, newest first (at most 500): only those waiting for a decision unless `pending` is false. */
export const listDeclassifications = (db: Db, pending: boolean): Promise<Declassification[]> =>
  db
    .select()
    .from(declassifications)
    .where(pending ? eq(declassifications.state, 'PENDING') : undefined)
    .orderBy(desc(declassifications.createdAt))
    .limit(500);

/** The audit log, newest first: of one subject, since a time, at most `limit` entries. */
export const listAuditEvents = (db: Db, filter: { subject?: string | null; since?: Date | null; limit: number }): Promise<AuditEvent[]> =>
  db
    .select()
    .from(auditEvents)
    .where(and(filter.subject ? eq(auditEvents.subject, filter.subject) : undefined, filter.since ? gte(auditEvents.at, filter.since) : undefined))
    .orderBy(desc(auditEvents.at))
    .limit(filter.limit);
