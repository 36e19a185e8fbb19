// Promotion to production is an approval: `requestModelPromotion` asks for a production alias to point at a version,
// `decideModelPromotion` approves (and moves the alias) or rejects it. The decider is a different human from the
// requester (server/auth/people.ts, as for declassifications) holding the production grant. The version must be
// allowed in production at both steps: not deprecated, its label within the production model policy, its
// evaluation metrics within the bounds the model declares. Requests, decisions and refusals are all audited.
import { subject } from '@casl/ability';
import { eq } from 'drizzle-orm';
import { audit } from '../audit/audit';
import type { AppAbility } from '../auth/ability';
import { secondPersonProblem } from '../auth/people';
import { refusal } from '../auth/refuse';
import type { Db, Tx } from '../db/client';
import { type Identity, identities } from '../db/tables/identities';
import { type ModelPromotion, type ModelVersion, modelPromotions, modelVersions, type RegisteredModel, registeredModels } from '../db/tables/registry';
import { metricSummaries } from '../db/tables/tracking';
import { AtelierError, badInput, notFound } from '../errors';
import { assertMayChangeRegistry, assertMayWriteModel, auditedRegistry } from './access';
import { aliasOf, assertMayAlias, checkAlias, moveAlias } from './aliases';
import { registryEvent } from './events';
import { metricValues } from './lineage';
import { findModel, findModelVersion } from './models';

const nameOf = (m: RegisteredModel) => `${m.namespace}/${m.name}`;

/** Throws a refusal naming each requirement the version misses (a missing metric misses it too). */
async function assertMeetsRequirements(tx: Db | Tx, identity: Identity, model: RegisteredModel, version: ModelVersion, action: string) {
  if (!model.requirements.length) return;
  const values = metricValues(version, await tx.select().from(metricSummaries).where(eq(metricSummaries.runId, version.runId)));
  const misses = model.requirements.flatMap((r) => {
    const value = values.get(r.metric);
    if (value === undefined) return [`${r.metric} was not logged by its run`];
    if (r.min != null && !(value >= r.min)) return [`${r.metric} is ${value}, below ${r.min}`];
    if (r.max != null && !(value <= r.max)) return [`${r.metric} is ${value}, above ${r.max}`];
    return [];
  });
  if (misses.length)
    throw refusal(
      {
        identity,
        action,
        subject: `model:${nameOf(model)}@${version.version}`,
        rule: 'a version promoted to production meets the metric requirements its model declares',
        details: { misses },
      },
      `${nameOf(model)}@${version.version} does not meet the model's requirements: ${misses.join('; ')}. Promote a version that does, or have a writer of its namespace change them (\`atelier model save ${nameOf(model)} --require METRIC>=MIN\`, --clear-requirements).`,
    );
}

async function assertPromotable(tx: Db | Tx, identity: Identity, model: RegisteredModel, version: ModelVersion, action: string) {
  await assertMayAlias(tx, identity, model, version, 'production', action);
  await assertMeetsRequirements(tx, identity, model, version, action);
}

/** Asks for production alias `alias` of the model to point at `version`; writers of the model's namespace ask. */
export async function requestModelPromotion(
  db: Db,
  ability: AppAbility,
  identity: Identity,
  input: { model: string; version: string; alias: string; reason: string },
): Promise<ModelPromotion> {
  assertMayChangeRegistry(ability, identity, 'model.promotion.request');
  checkAlias(input.alias);
  if (!input.reason.trim() || input.reason.length > 10_000) throw badInput('Say why this version should be promoted (reason, at most 10,000 characters).');
  return auditedRegistry(db, () =>
    db.transaction(async (tx) => {
      const model = await findModel(tx, input.model, { lock: true });
      await assertMayWriteModel(tx, ability, identity, model, 'model.promotion.request');
      const current = await aliasOf(tx, model.id, input.alias);
      if (current && current.domain !== 'production')
        throw badInput(
          `Alias "${input.alias}" lives in ${current.domain}; promotions move production aliases: promote under another alias name, or move this one directly (setModelAlias; \`atelier model alias ${nameOf(model)} ${input.alias} ${input.version}\`).`,
        );
      const { version } = await findModelVersion(tx, `${nameOf(model)}@${input.version}`);
      if (current?.versionId === version.id) throw new AtelierError('CONFLICT', `Alias "${input.alias}" already points at version ${version.version}.`);
      await assertPromotable(tx, identity, model, version, 'model.promotion.request');
      const [request] = await tx
        .insert(modelPromotions)
        .values({ modelId: model.id, versionId: version.id, alias: input.alias, domain: 'production', reason: input.reason, requestedBy: identity.id })
        .returning();
      await registryEvent(tx, 'promotion.requested', model.id, identity, { promotionId: request!.id, alias: input.alias, version: version.version });
      await audit(tx, {
        identity,
        action: 'model.promotion.request',
        decision: 'allow',
        subject: `model:${nameOf(model)}@${version.version}`,
        rule: 'writers of the namespace ask for promotions',
        details: { id: request!.id, alias: input.alias },
      });
      return request!;
    }),
  );
}

/**
 * Throws unless `identity` may decide the request: still pending, a different human from the requester, holding the
 * production grant. Refusals are audited where a decision is attempted (inside `auditedRegistry`).
 */
export async function assertMayDecidePromotion(db: Db | Tx, ability: AppAbility, identity: Identity, request: ModelPromotion, model: RegisteredModel) {
  const subjectName = `model:${nameOf(model)}`;
  if (request.state !== 'PENDING') throw new AtelierError('CONFLICT', `Promotion ${request.id} was already ${request.state.toLowerCase()}.`);
  const [requester] = await db.select().from(identities).where(eq(identities.id, request.requestedBy));
  const notSecond = requester ? secondPersonProblem(requester, identity, 'promotion') : null;
  if (notSecond)
    throw refusal(
      {
        identity,
        action: 'model.promotion.decide',
        subject: subjectName,
        rule: 'the decider of a promotion is a different human from its requester (a service account counts as its owner)',
        details: { id: request.id, requestedBy: requester!.name },
      },
      notSecond,
    );
  if (!ability.can('start', subject('Run', { domain: request.domain })))
    throw refusal(
      {
        identity,
        action: 'model.promotion.decide',
        subject: subjectName,
        rule: 'deciders of a production promotion hold the production grant',
        details: { id: request.id },
      },
      `Deciding a ${request.domain} promotion needs the ${request.domain} grant for one of your teams; an admin runs \`npx atelier team grant TEAM ${request.domain}\`.`,
    );
}

/** Approves (moving the alias, after checking the version again) or rejects a promotion request. */
export async function decideModelPromotion(
  db: Db,
  ability: AppAbility,
  identity: Identity,
  input: { id: string; approve: boolean; reason?: string | null },
): Promise<ModelPromotion> {
  assertMayChangeRegistry(ability, identity, 'model.promotion.decide');
  return auditedRegistry(db, () =>
    db.transaction(async (tx) => {
      const [request] = await tx.select().from(modelPromotions).where(eq(modelPromotions.id, input.id)).for('update');
      if (!request) throw notFound(`No promotion ${input.id}; \`atelier model show NS/NAME\` lists a model's pending promotions.`);
      const [model] = await tx.select().from(registeredModels).where(eq(registeredModels.id, request.modelId)).for('update');
      await assertMayDecidePromotion(tx, ability, identity, request, model!);
      const [version] = await tx.select().from(modelVersions).where(eq(modelVersions.id, request.versionId));
      if (input.approve) {
        // Labels, metrics or deprecation may have changed since the request: checked again now.
        await assertPromotable(tx, identity, model!, version!, 'model.promotion.decide');
        await moveAlias(tx, model!, request.alias, 'production', version!, identity, `promoted: ${request.reason}`, 'promote', request.id);
      }
      const [decided] = await tx
        .update(modelPromotions)
        .set({ state: input.approve ? 'APPROVED' : 'REJECTED', decidedBy: identity.id, decidedAt: new Date(), decisionReason: input.reason ?? null })
        .where(eq(modelPromotions.id, request.id))
        .returning();
      await registryEvent(tx, 'promotion.decided', model!.id, identity, { promotionId: request.id, approved: input.approve, version: version!.version });
      await audit(tx, {
        identity,
        action: 'model.promotion.decide',
        decision: 'allow',
        subject: `model:${nameOf(model!)}@${version!.version}`,
        rule: 'decided by a different human from its requester, holding the production grant',
        details: { id: request.id, approved: input.approve },
      });
      return decided!;
    }),
  );
}
