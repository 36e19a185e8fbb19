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

/**
 * A refusal carrying its own audit entry, so it is audited even though the transaction that found it rolls back:
 * written once, by whichever comes first of `audited` around the work, `recordRefusal` at an edge (the GraphQL
 * plugin, an HTTP route), or `refuse` (server/auth/refuse.ts), which writes it at once.
 */
export class AuditedDenial extends AtelierError {
  /** Whether its entry is in the audit log already. */
  recorded = false;
  constructor(
    readonly entry: AuditEntry,
    message: string,
  ) {
    super('FORBIDDEN', message);
  }
}

// Refusals without an entry of their own (a plain FORBIDDEN) whose audit record an edge has written.
const recordedErrors = new WeakSet<object>();

/** Whether a refusal's audit record is written already (so no edge writes another). */
export const isRecorded = (error: object): boolean => (error instanceof AuditedDenial ? error.recorded : recordedErrors.has(error));

/** Marks a refusal as audited: whoever wrote its record says so, so an edge does not write a second. */
export function markRecorded(error: object): void {
  if (error instanceof AuditedDenial) error.recorded = true;
  else recordedErrors.add(error);
}

/**
 * Writes a refusal's audit record unless it is written already: its own entry, or `fallback` (what the edge knows:
 * who, which operation) for a refusal that carries none. Outside any transaction, so a rollback keeps it.
 */
export async function recordRefusal(db: Db, error: object, fallback?: AuditEntry): Promise<void> {
  if (isRecorded(error)) return;
  const entry = error instanceof AuditedDenial ? error.entry : fallback;
  if (!entry) return;
  markRecorded(error);
  await audit(db, entry);
}

/** Runs `work` (usually a transaction); a denial it throws is written to the audit log after the rollback. */
export async function audited<T>(db: Db, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof AuditedDenial) await recordRefusal(db, error);
    throw error;
  }
}
