// The CASL ability of one request, built from its identity's role. Governance (teams, grants, domains,
// columns) refines these rules; every resolver and the orchestrator ask the ability, never the role.
import { AbilityBuilder, createMongoAbility, subject, type ForcedSubject, type MongoAbility } from '@casl/ability';
import type { Identity } from '../db/tables/identities';
import type { Domain } from '../db/tables/workflows';
import { forbidden } from '../errors';

export type Action = 'manage' | 'read' | 'create' | 'update' | 'start' | 'cancel' | 'publish';
export type SubjectType =
  | 'all'
  | 'Module'
  | 'ModuleVersion'
  | 'Workflow'
  | 'Run'
  | 'Task'
  | 'Identity'
  | 'Team'
  | 'Namespace'
  | 'Dataset'
  | 'ExecutorHost'
  | 'HotCluster';

/** A team as an ability sees it: who may change its membership and its namespaces. */
export interface TeamSubject {
  name: string;
  /** Identities with role maintainer or admin in the team. */
  maintainers: string[];
}

/** A module namespace as an ability sees it: who may publish into it and move its tags. */
export interface NamespaceSubject {
  name: string;
  /** The owning team's name; null while no team owns it. */
  team: string | null;
  /** Identities with role member, maintainer or admin in the owning team. */
  writers: string[];
}

/** Rows checked as instances (`subject('Run', run)`) where rules may depend on the row. */
type Instances = (TeamSubject & ForcedSubject<'Team'>) | (NamespaceSubject & ForcedSubject<'Namespace'>) | (RunSubject & ForcedSubject<'Run'>);

/** A run as an ability sees it (a full Run row qualifies). */
export interface RunSubject {
  domain: Domain;
}

/** What an identity's teams grant beyond its role. */
export interface Grants {
  /** Domains its teams may start runs in (experimentation is open to every member). */
  domains: Domain[];
}
export type AppAbility = MongoAbility<[Action, SubjectType | Instances]>;

export const teamSubject = (team: TeamSubject) => subject('Team', team);
export const namespaceSubject = (ns: NamespaceSubject) => subject('Namespace', ns);

export function defineAbilityFor(identity: Pick<Identity, 'id' | 'role'>, grants: Grants = { domains: [] }): AppAbility {
  const { can, build } = new AbilityBuilder<AppAbility>(createMongoAbility);
  switch (identity.role) {
    case 'admin':
      can('manage', 'all');
      break;
    case 'member':
      can('read', ['Module', 'ModuleVersion', 'Workflow', 'Run', 'Task', 'Team', 'Namespace', 'Dataset', 'ExecutorHost', 'HotCluster']);
      can('publish', 'Module');
      // A namespace is written only by its owning team's members (people and the team's CI service accounts).
      can('publish', 'Namespace', { writers: identity.id });
      // A team's maintainers manage its members and claim namespaces for it.
      can('update', 'Team', { maintainers: identity.id });
      can(['create', 'update'], 'Workflow');
      // Runs start in experimentation freely; ad hoc and production need a grant to one of the identity's teams.
      can('start', 'Run', { domain: { $in: [...new Set<Domain>(['experimentation', ...grants.domains])] } });
      can('cancel', 'Run');
      can(['create', 'update'], 'HotCluster');
      break;
    case 'viewer':
      can('read', ['Module', 'ModuleVersion', 'Workflow', 'Run', 'Task', 'Team', 'Namespace', 'Dataset', 'ExecutorHost', 'HotCluster']);
      break;
  }
  return build();
}

/** Throws FORBIDDEN with a message saying what was refused, unless the ability allows it. */
export function assertCan(ability: AppAbility, action: Action, subject: SubjectType, what: string): void {
  if (!ability.can(action, subject)) throw forbidden(`You may not ${what}; ask an admin for a role that allows "${action}" on ${subject}.`);
}
