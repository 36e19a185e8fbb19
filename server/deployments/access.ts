// Who may do what with deployments. Reading: admins and members of the owning team (its model's namespace team);
// anyone else is told it does not exist. Changing: members and admins only (a viewer is refused first, before any
// lookup), who write the model's namespace and hold the deployment's domain grant (the grant that moves an alias
// there). What is served is checked as an alias move would be (server/registry/aliases.ts#assertMayAlias), and in
// production the version must also have an approved promotion: at creation, and again at every rollout.
import { subject } from '@casl/ability';
import { and, eq } from 'drizzle-orm';
import { type AppAbility, isAdmin } from '../auth/ability';
import { refusal } from '../auth/refuse';
import type { Db, Tx } from '../db/client';
import type { DeploymentRow } from '../db/tables/deployments';
import type { Identity } from '../db/tables/identities';
import { type ModelVersion, modelPromotions, type RegisteredModel } from '../db/tables/registry';
import { teamMembers } from '../db/tables/teams';
import { assertMayWriteModel } from '../registry/access';
import { assertMayAlias } from '../registry/aliases';
import type { Domain } from '../vocabulary';

export interface Caller {
  identity: Identity;
  ability: AppAbility;
}

/** A viewer (or a token scoped to reading) is refused every change, audited, before anything is looked up. */
export function assertMayChangeDeployments(caller: Caller, action: string): void {
  if (caller.ability.can('publish', 'Namespace') || isAdmin(caller.ability)) return;
  throw refusal(
    { identity: caller.identity, action, subject: 'deployments', rule: 'members and admins manage deployments; viewers read them' },
    'Your role (or token) reads deployments but may not change them: ask an admin for a member role in the owning team (or use a token with the publish:Namespace scope).',
  );
}

export async function mayReadDeployment(db: Db | Tx, caller: Caller, deployment: Pick<DeploymentRow, 'teamId'>): Promise<boolean> {
  if (isAdmin(caller.ability)) return true;
  if (!deployment.teamId) return false;
  const [row] = await db
    .select({ role: teamMembers.role })
    .from(teamMembers)
    .where(and(eq(teamMembers.teamId, deployment.teamId), eq(teamMembers.identityId, caller.identity.id)));
  return !!row;
}

/** Throws an audited FORBIDDEN unless the caller holds the domain's grant (the grant that moves an alias there). */
export function assertDomainGrant(caller: Caller, domain: Domain, action: string, name: string): void {
  if (caller.ability.can('start', subject('Run', { domain }))) return;
  throw refusal(
    {
      identity: caller.identity,
      action,
      subject: `deployment:${name}`,
      rule: `managing a deployment in ${domain} needs the ${domain} grant`,
      details: { domain },
    },
    `Deployments in ${domain} need the ${domain} grant for one of your teams; an admin runs \`npx atelier team grant TEAM ${domain}\`.`,
  );
}

/** Whether a writer of the model's namespace with the domain's grant may manage it; throws the audited refusal. */
export async function assertMayManage(db: Db | Tx, caller: Caller, model: RegisteredModel, domain: Domain, action: string, name: string): Promise<void> {
  await assertMayWriteModel(db, caller.ability, caller.identity, model, action);
  assertDomainGrant(caller, domain, action, name);
}

/** Why `version` may not be served in `domain` (a production version needs an approved promotion), or null. */
export async function productionProblem(db: Db | Tx, model: RegisteredModel, version: ModelVersion, domain: Domain): Promise<string | null> {
  if (domain !== 'production') return null;
  const [approved] = await db
    .select({ id: modelPromotions.id })
    .from(modelPromotions)
    .where(and(eq(modelPromotions.versionId, version.id), eq(modelPromotions.state, 'APPROVED')))
    .limit(1);
  return approved
    ? null
    : `${model.namespace}/${model.name}@${version.version} has no approved promotion: a production deployment serves only approved versions (\`npx atelier model promote ${model.namespace}/${model.name}@${version.version} ALIAS\`, approved by a second person).`;
}

/** Throws (a recorded refusal) unless the version may be served in the domain: the alias policy, and approval in production. */
export async function assertMayServe(
  db: Db | Tx,
  identity: Identity,
  model: RegisteredModel,
  version: ModelVersion,
  domain: Domain,
  action: string,
  name: string,
) {
  await assertMayAlias(db, identity, model, version, domain, action);
  const problem = await productionProblem(db, model, version, domain);
  if (problem)
    throw refusal(
      {
        identity,
        action,
        subject: `deployment:${name}`,
        rule: 'a production deployment serves only versions with an approved promotion',
        details: { model: `${model.namespace}/${model.name}`, version: version.version },
      },
      problem,
    );
}

/** What the caller may do to the deployment (for the dashboards' buttons); never throws. */
export async function viewerMayManage(db: Db | Tx, caller: Caller, model: RegisteredModel, domain: Domain): Promise<boolean> {
  if (!caller.ability.can('publish', 'Namespace') && !isAdmin(caller.ability)) return false;
  if (!caller.ability.can('start', subject('Run', { domain }))) return false;
  return assertMayWriteModel(db, caller.ability, caller.identity, model, 'deployment.viewerCan').then(
    () => true,
    () => false,
  );
}
