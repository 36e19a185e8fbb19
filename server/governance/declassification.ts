// Declassification: lowering a column's label is a request that a different human from its author decides (an admin or
// a member of the team owning the namespace), never below what lineage computed; both steps are audited.
import { eq } from 'drizzle-orm';
import { audit, audited } from '../audit/audit';
import { type AppAbility, isAdmin, namespaceSubject } from '../auth/ability';
import { secondPersonProblem } from '../auth/people';
import { refusal } from '../auth/refuse';
import { type Db, retryingTransaction, type Tx } from '../db/client';
import { type Declassification, datasets, declassifications } from '../db/tables/governance';
import { type Identity, identities } from '../db/tables/identities';
import { AtelierError, badInput, forbidden, notFound } from '../errors';
import { assertMayWriteNamespace, loadNamespaceSubject } from '../teams/teams';
import type { Label } from '../vocabulary';
import { checkLabel, computedOf, findDataset, type LabelInput, lockLabel, writeLabel } from './datasets';
import { formatLabel, labelOf, leq, sameLabel } from './labels';

export async function requestDeclassification(
  db: Db,
  ability: AppAbility,
  identity: Identity,
  input: { dataset: string; column: string; label: LabelInput; reason: string },
): Promise<Declassification> {
  const wanted = checkLabel(input.label, 'label');
  if (!input.reason.trim()) throw badInput('Say why the column may be declassified (reason).');
  return retryingTransaction(db, async (tx) => {
    const dataset = await findDataset(tx, input.dataset);
    await assertMayWriteNamespace(tx, ability, dataset.namespace);
    const row = await lockLabel(tx, dataset, input.column);
    const current = labelOf(row);
    const computed = computedOf(row);
    if (!row) throw badInput(`${input.dataset}.${input.column} is UNCLASSIFIED; classify it with setColumnLabel instead.`);
    if (leq(current, wanted)) throw badInput(`${formatLabel(wanted)} is not below ${formatLabel(current)}; raise labels with setColumnLabel.`);
    if (computed && !leq(computed, wanted))
      throw forbidden(`${formatLabel(wanted)} is below ${formatLabel(computed)}, which lineage computed; no declassification can go below it.`);
    const [request] = await tx
      .insert(declassifications)
      .values({
        datasetId: dataset.id,
        column: input.column,
        fromLevel: current.level,
        fromCategories: current.categories,
        toLevel: wanted.level,
        toCategories: wanted.categories,
        reason: input.reason,
        requestedBy: identity.id,
      })
      .returning();
    await audit(tx, {
      identity,
      action: 'declassification.request',
      decision: 'allow',
      subject: `dataset:${input.dataset}.${input.column}`,
      rule: 'any namespace writer may ask',
      details: { id: request!.id, from: formatLabel(current), to: formatLabel(wanted) },
    });
    return request!;
  });
}

/**
 * Throws unless `identity` may decide the request now: it is still pending, the decider is not its author, and is an
 * admin or a member of the team owning the dataset's namespace. A refusal (see `refusal`): audited where
 * a decision is attempted (inside `audited`), not where the dashboards only ask (`Declassification.viewerCan`).
 */
export async function assertMayDecide(
  db: Db | Tx,
  ability: AppAbility,
  identity: Identity | null,
  request: Declassification,
  dataset: { namespace: string; name: string },
): Promise<void> {
  const subject = `dataset:${dataset.namespace}/${dataset.name}.${request.column}`;
  if (request.state !== 'PENDING') throw new AtelierError('CONFLICT', `Declassification ${request.id} was already ${request.state.toLowerCase()}.`);
  // The two-person rule counts humans, not identities: a service account stands for its owner.
  if (identity) {
    const [requester] = await db.select().from(identities).where(eq(identities.id, request.requestedBy));
    const notSecond = requester ? secondPersonProblem(requester, identity, 'declassification') : null;
    if (notSecond) {
      throw refusal(
        {
          identity,
          action: 'declassification.decide',
          subject,
          rule: 'the approver of a declassification is a different human from its author (a service account counts as its owner)',
          details: { id: request.id, requestedBy: requester!.name },
        },
        notSecond,
      );
    }
  }
  const ns = await loadNamespaceSubject(db, dataset.namespace);
  const maySign = isAdmin(ability) || (ns.team !== null && ability.can('publish', namespaceSubject(ns)));
  if (!maySign) {
    throw refusal(
      {
        identity,
        action: 'declassification.decide',
        subject,
        rule: 'deciders are admins or members of the owning team',
        details: { id: request.id },
      },
      `Only admins or members of the team owning "${dataset.namespace}" may decide declassifications there.`,
    );
  }
}

/** Approves (and applies) or rejects a declassification. The approver may not be its author. */
export async function decideDeclassification(
  db: Db,
  ability: AppAbility,
  identity: Identity,
  input: { id: string; approve: boolean },
): Promise<Declassification> {
  return audited(db, () =>
    retryingTransaction(db, async (tx) => {
      const [request] = await tx.select().from(declassifications).where(eq(declassifications.id, input.id)).for('update');
      if (!request) throw notFound(`No declassification ${input.id}; \`atelier declassify list --all\` lists them.`);
      const [dataset] = await tx.select().from(datasets).where(eq(datasets.id, request.datasetId));
      const subject = `dataset:${dataset!.namespace}/${dataset!.name}.${request.column}`;
      await assertMayDecide(tx, ability, identity, request, dataset!);
      const [decided] = await tx
        .update(declassifications)
        .set({ state: input.approve ? 'APPROVED' : 'REJECTED', decidedBy: identity.id, decidedAt: new Date() })
        .where(eq(declassifications.id, request.id))
        .returning();
      if (input.approve) {
        // The label may have moved since the request: apply only from the label it was asked about.
        const row = await lockLabel(tx, dataset!, request.column);
        const from = { level: request.fromLevel as Label['level'], categories: request.fromCategories };
        if (!sameLabel(labelOf(row), from))
          throw new AtelierError('CONFLICT', `The label of ${subject.slice(8)} changed since this was asked (now ${formatLabel(labelOf(row))}); ask again.`);
        await writeLabel(
          tx,
          dataset!.id,
          request.column,
          { level: request.toLevel as Label['level'], categories: request.toCategories },
          identity,
          `declassified: ${request.reason}`,
        );
      }
      await audit(tx, {
        identity,
        action: 'declassification.decide',
        decision: 'allow',
        subject,
        rule: 'decided by a different human from its author',
        details: { id: request.id, approved: input.approve },
      });
      return decided!;
    }),
  );
}
