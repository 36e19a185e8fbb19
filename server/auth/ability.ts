// The CASL ability of one request, built from its identity's role. Governance (teams, grants, domains,
// columns) refines these rules; every resolver and the orchestrator ask the ability, never the role.
import { AbilityBuilder, createMongoAbility, type MongoAbility } from '@casl/ability';
import type { Identity } from '../db/tables/identities';
import { forbidden } from '../errors';

export type Action = 'manage' | 'read' | 'create' | 'update' | 'start' | 'cancel' | 'publish';
export type Subject = 'all' | 'Module' | 'ModuleVersion' | 'Workflow' | 'Run' | 'Task' | 'Identity' | 'ExecutorHost' | 'HotCluster';
export type AppAbility = MongoAbility<[Action, Subject]>;

export function defineAbilityFor(identity: Pick<Identity, 'role'>): AppAbility {
  const { can, build } = new AbilityBuilder<AppAbility>(createMongoAbility);
  switch (identity.role) {
    case 'admin':
      can('manage', 'all');
      break;
    case 'member':
      can('read', ['Module', 'ModuleVersion', 'Workflow', 'Run', 'Task', 'ExecutorHost', 'HotCluster']);
      can('publish', 'Module');
      can(['create', 'update'], 'Workflow');
      can(['start', 'cancel'], 'Run');
      can(['create', 'update'], 'HotCluster');
      break;
    case 'viewer':
      can('read', ['Module', 'ModuleVersion', 'Workflow', 'Run', 'Task', 'ExecutorHost', 'HotCluster']);
      break;
  }
  return build();
}

/** Throws FORBIDDEN with a message saying what was refused, unless the ability allows it. */
export function assertCan(ability: AppAbility, action: Action, subject: Subject, what: string): void {
  if (!ability.can(action, subject)) throw forbidden(`You may not ${what}; ask an admin for a role that allows "${action}" on ${subject}.`);
}
