// Team ownership of what members create (hot clusters, workflows, schedules): which team a new one belongs to, and
// who may change or use one. One rule for all: admins; the writing members of its owning team; its creator alone
// when it belongs to no team. A refusal is an AuditedDenial (FORBIDDEN): run the work that may throw one under
// `audited(db, …)`, so its record is written even when a transaction rolls back.
import { AuditedDenial, audit } from '../audit/audit';
import { type AppAbility, isAdmin } from '../auth/ability';
import type { Db, Tx } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { badInput, forbidden } from '../errors';
import { teamsByIds, writableTeamsOf } from './queries';
import { teamWithName } from './teams';

/** Who asks: the identity and whether it is an admin (from its request's ability, or its role where there is none). */
export interface Owner {
  identity: Identity;
  admin: boolean;
}

export const ownerOf = (identity: Identity, ability?: AppAbility): Owner => ({
  identity,
  admin: ability ? isAdmin(ability) : identity.role === 'admin',
});

/** Something owned: by a team, or (no team) by its creator alone; neither: by admins alone. */
export interface Owned {
  teamId: string | null;
  createdBy: string | null;
}

/** What a refusal names: the audited action, the subject (`workflow:NAME`) and the words of its message. */
export interface OwnedThing {
  action: string;
  subject: string;
  /** `Workflow "nightly"`, `Hot cluster warm`. */
  label: string;
}

/**
 * The team a new object belongs to: the one named (the creator must be a writing member of it, unless an admin), else
 * the creator's only writing team, else none (owned by its creator alone). A creator in several teams names one,
 * except admins, whose objects then belong to no team (only admins change them).
 */
export async function newOwnerTeam(
  db: Db | Tx,
  owner: Owner,
  team: string | undefined | null,
  thing: OwnedThing,
  flag = '--team NAME',
): Promise<string | null> {
  const mine = await writableTeamsOf(db as Db, owner.identity.id);
  if (team !== undefined && team !== null) {
    const named = await teamWithName(db, team);
    if (named && (owner.admin || mine.some((t) => t.id === named.id))) return named.id;
    throw new AuditedDenial(
      {
        identity: owner.identity,
        action: thing.action,
        decision: 'deny',
        subject: thing.subject,
        rule: 'what a member creates belongs to a team the member writes for',
        details: { team },
      },
      `You are not a member of a team "${team}"; ${thing.label} can belong to one of your teams (${mine.map((t) => t.name).join(', ') || 'none'}).`,
    );
  }
  if (mine.length > 1) {
    if (owner.admin) return null;
    throw badInput(`You are in teams ${mine.map((t) => t.name).join(', ')}: say which one owns ${thing.label} (team: NAME, or ${flag}).`);
  }
  return mine[0]?.id ?? null;
}

/** Why `owner` may change (or use) `owned`, or null when it may not. */
export async function ownershipAllows(db: Db | Tx, owner: Owner, owned: Owned): Promise<string | null> {
  if (owner.admin) return 'admins manage everything';
  if (owned.teamId) {
    const mine = await writableTeamsOf(db as Db, owner.identity.id);
    return mine.some((t) => t.id === owned.teamId) ? 'members of the owning team manage what it owns' : null;
  }
  return owned.createdBy === owner.identity.id ? 'the creator manages what belongs to no team' : null;
}

export const OWNERSHIP_RULE = 'only writing members of the owning team (or its creator, when it has no team) and admins change it';

/** The name of the team that owns it, or null. */
export async function owningTeamName(db: Db | Tx, owned: Pick<Owned, 'teamId'>): Promise<string | null> {
  if (!owned.teamId) return null;
  const [team] = await teamsByIds(db as Db, [owned.teamId]);
  return team?.name ?? null;
}

/** The refusal's message: who owns it and who may `verb` it (`creator` null: no one, so admins alone). */
export function ownershipRefusal(label: string, team: string | null, verb: string, creator?: string | null): string {
  if (team)
    return `${label} belongs to team "${team}"; only its members (or an admin) may ${verb} it. Ask a maintainer of "${team}" to add you: \`npx atelier team add ${team} NAME --role member\`.`;
  if (creator === null) return `${label} belongs to no team and no one; only an admin may ${verb} it.`;
  return `${label} belongs to the identity that created it (no team); only it (or an admin) may ${verb} it.`;
}

/** Throws FORBIDDEN (the refusal's words, nothing audited) unless `owner` may `verb` `owned`: what `viewerCan` asks. */
export async function assertOwns(db: Db | Tx, owner: Owner, owned: Owned, label: string, verb: string): Promise<void> {
  if (!(await ownershipAllows(db, owner, owned))) throw forbidden(ownershipRefusal(label, await owningTeamName(db, owned), verb, owned.createdBy));
}

/** Throws an AuditedDenial unless `owner` may `verb` `owned`; an allowed decision is audited at once. */
export async function assertOwnerMay(db: Db | Tx, owner: Owner, owned: Owned, thing: OwnedThing, verb: string): Promise<void> {
  const allowed = await ownershipAllows(db, owner, owned);
  const team = await owningTeamName(db, owned);
  const entry = { identity: owner.identity, action: thing.action, subject: thing.subject, details: { team } };
  if (!allowed) throw new AuditedDenial({ ...entry, decision: 'deny', rule: OWNERSHIP_RULE }, ownershipRefusal(thing.label, team, verb, owned.createdBy));
  await audit(db, { ...entry, decision: 'allow', rule: allowed });
}
