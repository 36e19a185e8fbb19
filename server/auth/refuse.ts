// The one way an authorization decision refuses: a FORBIDDEN error that carries its audit record (who, what, which
// rule), written exactly once. `refusal` builds it (throw it anywhere, inside a transaction too: it is written after
// the rollback by `audited`, or by the edge that answers it); `refuse` writes it now and throws it. A refusal
// thrown without a record (a plain `forbidden(...)`) is still audited by the edge that answers the caller (the GraphQL
// plugin server/http/audit-refusals.ts, the HTTP routes), from what the edge knows: who and which operation.
import { type AuditEntry, AuditedDenial, recordRefusal } from '../audit/audit';
import type { Db } from '../db/client';

/** What a refusal records: who was refused what (`action`, e.g. `cache.namespace`), on which subject, by which rule. */
export type Refused = Omit<AuditEntry, 'decision'>;

/** A FORBIDDEN error saying `message` to the caller and recording `entry` in the audit log once. */
export const refusal = (entry: Refused, message: string): AuditedDenial => new AuditedDenial({ ...entry, decision: 'deny' }, message);

/** Writes the refusal's audit record now (not inside the caller's transaction) and throws it. */
export async function refuse(db: Db, entry: Refused, message: string): Promise<never> {
  const error = refusal(entry, message);
  await recordRefusal(db, error);
  throw error;
}
