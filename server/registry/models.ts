// Registered models: `namespace/name`, owned by the team that owns the namespace (the module namespace rules),
// with a description and the bounds on evaluation metrics their versions must meet to reach production.
import { and, eq } from 'drizzle-orm';
import { audit } from '../audit/audit';
import type { AppAbility } from '../auth/ability';
import type { Db, Tx } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { type ModelVersion, modelAliases, modelVersions, type RegisteredModel, registeredModels } from '../db/tables/registry';
import { badInput, notFound } from '../errors';
import { type ModelRequirement, versionNumber } from '../vocabulary';
import { assertMayChangeRegistry, assertMayWriteModel, auditedRegistry } from './access';
import { registryEvent } from './events';

const partRe = /^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$/;

/** `namespace/name` checked, or BAD_USER_INPUT saying the form. */
export function parseModelName(full: string): { namespace: string; name: string } {
  const [namespace = '', name = '', extra] = full.split('/');
  if (extra !== undefined || !partRe.test(namespace) || !partRe.test(name))
    throw badInput(`"${full}" is not a model name: use namespace/name, each 1–64 lowercase letters, digits, ".", "_" or "-".`);
  return { namespace, name };
}

export function checkRequirements(requirements: ModelRequirement[]): ModelRequirement[] {
  if (requirements.length > 50) throw badInput('A model declares at most 50 requirements.');
  return requirements.map((r, i) => {
    if (!r.metric || r.metric.length > 250) throw badInput(`requirements.${i}.metric must name a metric (1 to 250 characters).`);
    const min = r.min ?? null;
    const max = r.max ?? null;
    if (min === null && max === null) throw badInput(`requirements.${i} needs a min or a max for ${r.metric}.`);
    if ((min !== null && !Number.isFinite(min)) || (max !== null && !Number.isFinite(max))) throw badInput(`requirements.${i}: bounds are finite numbers.`);
    if (min !== null && max !== null && min > max)
      throw badInput(`requirements.${i}: min ${min} is above max ${max} for ${r.metric}, so no version could meet it; swap them.`);
    return { metric: r.metric, min, max };
  });
}

export async function modelByName(db: Db | Tx, full: string, options: { lock?: boolean } = {}): Promise<RegisteredModel | null> {
  const { namespace, name } = parseModelName(full);
  const query = db
    .select()
    .from(registeredModels)
    .where(and(eq(registeredModels.namespace, namespace), eq(registeredModels.name, name)));
  const [model] = options.lock ? await query.for('update') : await query;
  return model ?? null;
}

export async function findModel(db: Db | Tx, full: string, options: { lock?: boolean } = {}): Promise<RegisteredModel> {
  const model = await modelByName(db, full, options);
  if (!model) throw notFound(`No model ${full}; create it with \`npx atelier model register ${full} TASK OUTPUT\`.`);
  return model;
}

/** `namespace/name@N` (a version number) or `namespace/name@alias`; `@latest` or none: the newest version. */
export async function findModelVersion(db: Db | Tx, ref: string): Promise<{ model: RegisteredModel; version: ModelVersion }> {
  const at = ref.indexOf('@');
  const model = await findModel(db, at < 0 ? ref : ref.slice(0, at));
  const selector = at < 0 ? 'latest' : ref.slice(at + 1);
  const full = `${model.namespace}/${model.name}`;
  let version: ModelVersion | undefined;
  if (/^\d+$/.test(selector)) {
    const number = versionNumber(selector);
    [version] =
      number === null
        ? []
        : await db
            .select()
            .from(modelVersions)
            .where(and(eq(modelVersions.modelId, model.id), eq(modelVersions.version, number)));
  } else {
    const [aliased] = await db
      .select({ version: modelVersions })
      .from(modelAliases)
      .innerJoin(modelVersions, eq(modelVersions.id, modelAliases.versionId))
      .where(and(eq(modelAliases.modelId, model.id), eq(modelAliases.alias, selector)));
    version = aliased?.version;
    if (!version && selector === 'latest') {
      const all = await db.select().from(modelVersions).where(eq(modelVersions.modelId, model.id));
      version = all.sort((a, b) => b.version - a.version)[0];
    }
  }
  if (!version) throw notFound(`${full} has no version or alias "${selector}"; see them with \`npx atelier model show ${full}\`.`);
  return { model, version };
}

/** The model, created (by a writer of its namespace) when it does not exist yet. */
export async function ensureModel(tx: Tx, ability: AppAbility, identity: Identity, full: string, description = ''): Promise<RegisteredModel> {
  const { namespace, name } = parseModelName(full);
  await assertMayWriteModel(tx, ability, identity, { namespace, name }, 'model.create');
  const existing = await modelByName(tx, full, { lock: true });
  if (existing) return existing;
  const [created] = await tx.insert(registeredModels).values({ namespace, name, description, createdBy: identity.id }).onConflictDoNothing().returning();
  if (!created) return findModel(tx, full, { lock: true });
  await registryEvent(tx, 'model.created', created.id, identity, { model: full });
  return created;
}

/** Creates a model, or updates its description and requirements; writers of its namespace only. */
export async function saveModel(
  db: Db,
  ability: AppAbility,
  identity: Identity,
  input: { name: string; description?: string | null; requirements?: ModelRequirement[] | null },
): Promise<RegisteredModel> {
  assertMayChangeRegistry(ability, identity, 'model.save');
  const requirements = input.requirements ? checkRequirements(input.requirements) : null;
  if (input.description && input.description.length > 10_000) throw badInput('A model description is at most 10,000 characters.');
  return auditedRegistry(db, () =>
    db.transaction(async (tx) => {
      const model = await ensureModel(tx, ability, identity, input.name, input.description ?? '');
      const changes = {
        ...(input.description != null ? { description: input.description } : {}),
        ...(requirements ? { requirements } : {}),
      };
      if (!Object.keys(changes).length) return model;
      const [updated] = await tx.update(registeredModels).set(changes).where(eq(registeredModels.id, model.id)).returning();
      await registryEvent(tx, 'model.updated', model.id, identity, { model: input.name, ...changes });
      await audit(tx, {
        identity,
        action: 'model.update',
        decision: 'allow',
        subject: `model:${input.name}`,
        rule: 'writers of the namespace change its models',
        details: changes,
      });
      return updated!;
    }),
  );
}
