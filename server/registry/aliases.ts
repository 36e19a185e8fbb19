// Aliases: movable pointers (`champion`, `challenger`, any name) with the module tags' semantics: each move is in the
// alias's history (who, from, to, when, why), rollback is an undo stack, and no alias moves to a deprecated version.
// Each alias lives in a domain fixed when it is first set; in `production` only an approved promotion moves it
// (server/registry/promotions.ts), and every move checks the version's label against the domain's model policy.

import { subject } from '@casl/ability';
import { and, desc, eq } from 'drizzle-orm';
import { audit } from '../audit/audit';
import type { AppAbility } from '../auth/ability';
import { refusal } from '../auth/refuse';
import type { Db, Tx } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { type ModelAlias, type ModelVersion, modelAliasEvents, modelAliases, modelVersions, type RegisteredModel } from '../db/tables/registry';
import { AtelierError, badInput, notFound } from '../errors';
import { columnsRead, labelDenial } from '../governance/model-labels';
import { aliasMovedSignal } from '../signals/sources';
import { type AliasAction, type Domain, domains } from '../vocabulary';
import { assertMayChangeRegistry, assertMayWriteModel, auditedRegistry, RecordedError } from './access';
import { registryEvent } from './events';
import { findModel, findModelVersion } from './models';

const aliasRe = /^[A-Za-z][A-Za-z0-9._-]{0,63}$/;

export function checkAlias(alias: string): void {
  if (!aliasRe.test(alias) || alias === 'latest' || /^\d+$/.test(alias))
    throw badInput(`"${alias}" is not a valid alias: use letters, digits, ".", "_" or "-", starting with a letter (not "latest").`);
}

const nameOf = (m: RegisteredModel) => `${m.namespace}/${m.name}`;

export async function aliasOf(db: Db | Tx, modelId: string, alias: string): Promise<ModelAlias | null> {
  const [row] = await db
    .select()
    .from(modelAliases)
    .where(and(eq(modelAliases.modelId, modelId), eq(modelAliases.alias, alias)));
  return row ?? null;
}

/**
 * Throws (a recorded refusal) unless `version` may sit behind an alias of `domain`: not deprecated, and its label
 * (from the current labels of every column it read) allowed by the domain's model policy.
 */
export async function assertMayAlias(tx: Db | Tx, identity: Identity, model: RegisteredModel, version: ModelVersion, domain: Domain, action: string) {
  const subjectName = `model:${nameOf(model)}@${version.version}`;
  if (version.deprecatedAt)
    throw new RecordedError(
      'CONFLICT',
      `Version ${version.version} of ${nameOf(model)} is deprecated${version.deprecationReason ? ` (${version.deprecationReason})` : ''}; no alias moves to it. Restore it first (\`npx atelier model deprecate ${nameOf(model)}@${version.version} --undo\`).`,
      { identity, action, decision: 'deny', subject: subjectName, rule: 'no alias moves to a deprecated version', details: { domain } },
    );
  const columns = (await columnsRead(tx, [version.id])).get(version.id) ?? [];
  const denial = labelDenial(domain, columns);
  if (denial)
    throw refusal(
      {
        identity,
        action,
        subject: subjectName,
        rule: `a model's label (the join of the labels of every column it read) must be allowed by the ${domain} domain's model policy`,
        details: { domain, columns: columns.filter((c) => denial.includes(`${c.dataset}.${c.column} `)).map((c) => `${c.dataset}.${c.column}`) },
      },
      `${nameOf(model)}@${version.version} may not be aliased in ${domain}. ${denial}`,
    );
}

/** Points the alias at the version and records the move; the caller has checked everything. */
export async function moveAlias(
  tx: Tx,
  model: RegisteredModel,
  alias: string,
  domain: Domain,
  version: ModelVersion,
  identity: Identity,
  reason: string,
  action: AliasAction,
  promotionId: string | null = null,
): Promise<ModelVersion | null> {
  const current = await aliasOf(tx, model.id, alias);
  if (current?.versionId === version.id) return version;
  const values = { versionId: version.id, domain, updatedBy: identity.id, updatedAt: new Date() };
  await tx
    .insert(modelAliases)
    .values({ modelId: model.id, alias, ...values })
    .onConflictDoUpdate({ target: [modelAliases.modelId, modelAliases.alias], set: values });
  const [event] = await tx
    .insert(modelAliasEvents)
    .values({
      modelId: model.id,
      alias,
      domain,
      fromVersionId: current?.versionId ?? null,
      toVersionId: version.id,
      movedBy: identity.id,
      action,
      reason,
      promotionId,
    })
    .returning({ id: modelAliasEvents.id });
  const [previous] = current ? await tx.select().from(modelVersions).where(eq(modelVersions.id, current.versionId)) : [];
  await registryEvent(tx, 'alias.moved', model.id, identity, {
    model: nameOf(model),
    alias,
    domain,
    from: previous?.version ?? null,
    to: version.version,
    action,
    promotionId,
  });
  await aliasMovedSignal(tx, {
    eventId: event!.id,
    namespace: model.namespace,
    model: model.name,
    alias,
    domain,
    from: previous?.version ?? null,
    to: version.version,
    action,
  });
  await audit(tx, {
    identity,
    action: `model.alias.${action}`,
    decision: 'allow',
    subject: `model:${nameOf(model)}`,
    rule: domain === 'production' ? 'production aliases move by approved promotions' : 'writers of the namespace move its aliases',
    details: { alias, domain, from: previous?.version ?? null, to: version.version, reason },
  });
  return previous ?? null;
}

const productionRefusal = (identity: Identity, model: RegisteredModel, alias: string) =>
  refusal(
    {
      identity,
      action: 'model.alias.move',
      subject: `model:${nameOf(model)}`,
      rule: 'an alias in the production domain moves only by an approved promotion request',
      details: { alias },
    },
    `Alias "${alias}" of ${nameOf(model)} is in the production domain: ask for a promotion (\`npx atelier model promote ${nameOf(model)}@VERSION ${alias}\`), which a second person holding the production grant approves.`,
  );

export interface AliasMove {
  model: RegisteredModel;
  alias: string;
  domain: Domain;
  version: ModelVersion;
  previous: ModelVersion | null;
}

/** Sets an alias outside production (its domain is fixed when first set; `experimentation` unless named). */
export async function setModelAlias(
  db: Db,
  ability: AppAbility,
  identity: Identity,
  input: { model: string; alias: string; version: string; domain?: Domain | null; reason?: string | null },
): Promise<AliasMove> {
  assertMayChangeRegistry(ability, identity, 'model.alias.set');
  checkAlias(input.alias);
  if (input.domain && !domains.includes(input.domain)) throw badInput(`domain must be one of ${domains.join(', ')}.`);
  return auditedRegistry(db, () =>
    db.transaction(async (tx) => {
      const model = await findModel(tx, input.model, { lock: true });
      await assertMayWriteModel(tx, ability, identity, model, 'model.alias.move');
      const current = await aliasOf(tx, model.id, input.alias);
      const domain = current?.domain ?? input.domain ?? 'experimentation';
      if (input.domain && current && input.domain !== current.domain)
        throw badInput(`Alias "${input.alias}" lives in ${current.domain}; an alias keeps its domain (use another alias name for ${input.domain}).`);
      if (domain === 'production') throw productionRefusal(identity, model, input.alias);
      const { version } = await findModelVersion(tx, `${nameOf(model)}@${input.version}`);
      await assertMayAlias(tx, identity, model, version, domain, 'model.alias.move');
      const previous = await moveAlias(tx, model, input.alias, domain, version, identity, input.reason ?? 'moved', 'move');
      return { model, alias: input.alias, domain, version, previous };
    }),
  );
}

/**
 * Moves an alias back to where it pointed before its last move; rollbacks stack like an undo history. In
 * production the target was approved when it was promoted there; the caller needs the production grant, and the
 * target is checked again (not deprecated, label still allowed).
 */
export async function rollbackModelAlias(
  db: Db,
  ability: AppAbility,
  identity: Identity,
  input: { model: string; alias: string; reason?: string | null },
): Promise<AliasMove> {
  assertMayChangeRegistry(ability, identity, 'model.alias.rollback');
  checkAlias(input.alias);
  return auditedRegistry(db, () =>
    db.transaction(async (tx) => {
      const model = await findModel(tx, input.model, { lock: true });
      await assertMayWriteModel(tx, ability, identity, model, 'model.alias.rollback');
      const current = await aliasOf(tx, model.id, input.alias);
      if (!current) throw notFound(`${nameOf(model)} has no alias "${input.alias}"; \`atelier model show ${nameOf(model)}\` lists its aliases.`);
      if (current.domain === 'production' && !ability.can('start', subject('Run', { domain: 'production' })))
        throw refusal(
          {
            identity,
            action: 'model.alias.rollback',
            subject: `model:${nameOf(model)}`,
            rule: 'rolling back a production alias needs the production grant',
            details: { alias: input.alias },
          },
          `Rolling back production alias "${input.alias}" needs the production grant for one of your teams; an admin runs \`npx atelier team grant TEAM production\`.`,
        );
      const history = await tx
        .select()
        .from(modelAliasEvents)
        .where(and(eq(modelAliasEvents.modelId, model.id), eq(modelAliasEvents.alias, input.alias)))
        .orderBy(desc(modelAliasEvents.createdAt), desc(modelAliasEvents.id));
      let undone = 0;
      let target: string | null = null;
      for (const event of history) {
        if (event.action === 'rollback') undone++;
        else if (undone > 0) undone--;
        else {
          target = event.fromVersionId;
          break;
        }
      }
      if (!target) throw new AtelierError('CONFLICT', `Alias "${input.alias}" of ${nameOf(model)} has no earlier version to roll back to.`);
      const [version] = await tx.select().from(modelVersions).where(eq(modelVersions.id, target));
      await assertMayAlias(tx, identity, model, version!, current.domain, 'model.alias.rollback');
      const previous = await moveAlias(tx, model, input.alias, current.domain, version!, identity, input.reason ?? 'rolled back', 'rollback');
      return { model, alias: input.alias, domain: current.domain, version: version!, previous };
    }),
  );
}
