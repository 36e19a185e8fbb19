// The audit log: who did what to data, grants, labels, memberships or schedules, whether it was allowed, and by which
// rule. Below every feature that decides something, so each of them can record its decisions.
import type { Db, Tx } from '../db/client';
import { auditEvents } from '../db/tables/governance';
import type { Identity } from '../db/tables/identities';
import { AtelierError } from '../errors';

export interface AuditEntry {
  identity: Identity | null;
  action: string;
  decision: 'allow' | 'deny';
  subject: string;
  rule: string;
  details?: Record<string, unknown>;
}

/** The row an entry becomes; for statements that write it themselves (e.g. in a CTE beside a read). */
export const auditRow = (entry: AuditEntry): typeof auditEvents.$inferInsert => ({
  identityId: entry.identity?.id ?? null,
  action: entry.action,
  decision: entry.decision,
  subject: entry.subject,
  rule: entry.rule,
  details: entry.details ?? {},
});

export async function audit(db: Db | Tx, entry: AuditEntry): Promise<void> {
  await db.insert(auditEvents).values(auditRow(entry));
}

/** A refusal that must be audited even though the transaction that found it rolls back. */
export class AuditedDenial extends AtelierError {
  constructor(
    readonly entry: AuditEntry,
    message: string,
  ) {
    super('FORBIDDEN', message);
  }
}

/** Runs `work` (usually a transaction); a denial it throws is written to the audit log after the rollback. */
export async function audited<T>(db: Db, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof AuditedDenial) await audit(db, error.entry);
    throw error;
  }
}
