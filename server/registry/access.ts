// Who may change a model: the writers of its namespace (the namespace's team, as for modules). A refusal is an
// AuditedDenial naming the model, and any other refusal the registry makes (a deprecated version, a conflict) is
// recorded too: run the work under `auditedRegistry`, which writes the record after the transaction rolled back.

import type { AuditEntry } from '../audit/audit';
import { audit, audited } from '../audit/audit';
import type { AppAbility } from '../auth/ability';
import { refusal } from '../auth/refuse';
import type { Db, Tx } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { AtelierError, type ErrorCode } from '../errors';
import { assertMayWriteNamespace } from '../teams/teams';

/** A typed error (not FORBIDDEN: a conflict, a missing task) whose decision is still recorded in the audit log. */
export class RecordedError extends AtelierError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly entry: AuditEntry,
  ) {
    super(code, message);
  }
}

/** Runs registry work; a refusal it throws is audited after the rollback, so nothing else is written. */
export async function auditedRegistry<T>(db: Db, work: () => Promise<T>): Promise<T> {
  try {
    return await audited(db, work);
  } catch (error) {
    if (error instanceof RecordedError) await audit(db, error.entry);
    throw error;
  }
}

/**
 * Viewers (and tokens whose scopes do not reach namespaces) read the registry; members and admins change it. Checked
 * first, before anything is looked up, so a viewer's every registry mutation is the same audited FORBIDDEN.
 */
export function assertMayChangeRegistry(ability: AppAbility, identity: Identity, action: string): void {
  if (ability.can('publish', 'Namespace')) return;
  throw refusal(
    { identity, action, subject: 'model registry', rule: 'members and admins change the model registry; viewers read it' },
    'Your role reads the model registry but may not change it: ask an admin for a member role in the owning team (or use a token with the publish:Namespace scope).',
  );
}

/** Throws a recorded refusal unless the caller writes the model's namespace. */
export async function assertMayWriteModel(
  tx: Db | Tx,
  ability: AppAbility,
  identity: Identity,
  model: { namespace: string; name: string },
  action: string,
): Promise<void> {
  try {
    await assertMayWriteNamespace(tx, ability, model.namespace);
  } catch (error) {
    if (error instanceof AtelierError && error.code === 'FORBIDDEN')
      throw refusal(
        { identity, action, subject: `model:${model.namespace}/${model.name}`, rule: 'a model is changed only by writers of its namespace (its team)' },
        error.message,
      );
    throw error;
  }
}
