// Who may do what with monitoring. Writing observations: the writers of the target's owner (its namespace's team,
// a workflow's team or creator) and admins, as for writing runs. Reading a target's observations, monitors and
// alerts: admins, members of its owning team (any role), and whoever may read run data in its domain. Monitors and
// alerts are changed by the writing members of the team that owns the monitor. Viewers are refused every change
// first, before anything is looked up.
import { subject } from '@casl/ability';
import { and, eq } from 'drizzle-orm';
import { type AppAbility, isAdmin, namespaceSubject, type TokenScopes } from '../auth/ability';
import { refusal } from '../auth/refuse';
import type { Db, Tx } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { teamMembers } from '../db/tables/teams';
import { loadNamespaceSubject } from '../teams/teams';
import type { Target } from './targets';

export interface Caller {
  identity: Identity;
  ability: AppAbility;
  /** Its token's scopes (null or absent: unscoped): what it creates to act later acts for no more than they allow. */
  scopes?: TokenScopes;
}

/** Throws an audited FORBIDDEN for callers that change nothing (viewers, tokens scoped to reading). */
export function assertMayOperate(caller: Caller, action: string): void {
  const { ability } = caller;
  if (ability.can('publish', 'Namespace') || ability.can('start', 'Run') || isAdmin(ability)) return;
  throw refusal(
    {
      identity: caller.identity,
      action,
      subject: 'monitoring',
      rule: 'members and admins write observations and manage monitors and alerts; viewers read them',
    },
    'Your role (or token) reads monitoring but may not change it: ask an admin for a member role in the owning team, or use a token with the start:Run or publish:Namespace scope.',
  );
}

export async function isTeamMember(db: Db | Tx, identityId: string, teamId: string | null): Promise<boolean> {
  if (!teamId) return false;
  const [row] = await db
    .select({ role: teamMembers.role })
    .from(teamMembers)
    .where(and(eq(teamMembers.teamId, teamId), eq(teamMembers.identityId, identityId)));
  return !!row;
}

/** Whether the caller may read the target's observations, monitors and alerts. */
export async function mayReadTarget(db: Db | Tx, caller: Caller, target: Pick<Target, 'domain' | 'teamId'>): Promise<boolean> {
  if (isAdmin(caller.ability)) return true;
  if (caller.ability.can('read', subject('Run', { domain: target.domain }), 'parameters')) return true;
  return isTeamMember(db, caller.identity.id, target.teamId);
}

/** Why the caller may write observations about the target, or null. */
export async function mayWriteTarget(db: Db | Tx, caller: Caller, target: Target): Promise<string | null> {
  if (isAdmin(caller.ability)) return 'admins write everything';
  if (target.namespace !== null) {
    const ns = await loadNamespaceSubject(db, target.namespace);
    return caller.ability.can('publish', namespaceSubject(ns)) ? 'writers of the namespace write observations about what it holds' : null;
  }
  if (target.teamId) {
    const [row] = await db
      .select({ role: teamMembers.role })
      .from(teamMembers)
      .where(and(eq(teamMembers.teamId, target.teamId), eq(teamMembers.identityId, caller.identity.id)));
    return row && row.role !== 'viewer' ? 'writing members of the owning team write observations about what it owns' : null;
  }
  return target.createdBy === caller.identity.id ? 'the creator writes observations about what belongs to no team' : null;
}
