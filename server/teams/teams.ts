// Teams, memberships and namespace ownership: who may publish into a namespace and move its tags. A membership
// changed is said, once committed, to every replica's memory of tokens (server/auth/token-cache.ts).
import { and, eq, inArray } from 'drizzle-orm';
import { audit } from '../audit/audit';
import { type AppAbility, isAdmin, type NamespaceSubject, namespaceSubject, teamSubject } from '../auth/ability';
import { tokensChanged } from '../auth/token-cache';
import type { Db, Tx } from '../db/client';
import { type Identity, identities } from '../db/tables/identities';
import { type Namespace, namespaces, type Team, teamMembers, teams } from '../db/tables/teams';
import { AtelierError, badInput, forbidden, notFound } from '../errors';
import { type TeamRole, teamWriterRoles } from '../vocabulary';

const teamNameRe = /^[a-z0-9]([a-z0-9-_.]{0,62}[a-z0-9])?$/;
const maintainerRoles: TeamRole[] = ['maintainer', 'admin'];

export async function teamWithName(db: Db | Tx, name: string): Promise<Team | null> {
  const [team] = await db.select().from(teams).where(eq(teams.name, name));
  return team ?? null;
}

export async function teamByName(db: Db | Tx, name: string): Promise<Team> {
  const team = await teamWithName(db, name);
  if (!team) throw notFound(`No team "${name}"; list teams with \`npx atelier team list\`.`);
  return team;
}

async function membersWithRoles(db: Db | Tx, teamId: string, roles: readonly TeamRole[]): Promise<string[]> {
  const rows = await db
    .select({ id: teamMembers.identityId })
    .from(teamMembers)
    .where(and(eq(teamMembers.teamId, teamId), inArray(teamMembers.role, roles)));
  return rows.map((r) => r.id);
}

/** Throws FORBIDDEN unless the caller may manage the team's members and namespaces. */
async function assertMayManageTeam(db: Db | Tx, ability: AppAbility, team: Team): Promise<void> {
  const subject = teamSubject({ name: team.name, maintainers: await membersWithRoles(db, team.id, maintainerRoles) });
  if (!ability.can('update', subject)) {
    throw forbidden(`Only maintainers of team "${team.name}" (or admins) may change its members and namespaces; ask one of them.`);
  }
}

export async function createTeam(db: Db, ability: AppAbility, identity: Identity, input: { name: string; description?: string }): Promise<Team> {
  if (!ability.can('create', 'Team')) throw forbidden('Only admins may create teams; ask an admin to run `npx atelier team create NAME`.');
  if (!teamNameRe.test(input.name)) throw badInput(`"${input.name}" is not a valid team name: use 1–64 lowercase letters, digits, "-", "_" or ".".`);
  const created = await db.transaction(async (tx) => {
    const [team] = await tx
      .insert(teams)
      .values({ name: input.name, description: input.description ?? '' })
      .onConflictDoNothing()
      .returning();
    if (!team) throw new AtelierError('CONFLICT', `A team named "${input.name}" already exists.`);
    // Whoever creates a team maintains it until they hand it over: a grant of access, audited like any membership.
    await tx.insert(teamMembers).values({ teamId: team.id, identityId: identity.id, role: 'admin', addedBy: identity.id });
    await audit(tx, {
      identity,
      action: 'team.create',
      decision: 'allow',
      subject: `team:${team.name}`,
      rule: 'admins create teams; the creator is the new team’s admin',
      details: { member: identity.name, role: 'admin' },
    });
    return team;
  });
  await tokensChanged(db, [identity.id]);
  return created;
}

/** Adds an identity to a team, or changes its role there. */
export async function setTeamMember(db: Db, ability: AppAbility, caller: Identity, input: { team: string; identity: string; role: TeamRole }): Promise<Team> {
  const { team, memberId } = await db.transaction(async (tx) => {
    const team = await teamByName(tx, input.team);
    await assertMayManageTeam(tx, ability, team);
    const [member] = await tx.select().from(identities).where(eq(identities.name, input.identity));
    if (!member) throw notFound(`No user or service account named "${input.identity}"; an admin creates a user with \`atelier user create NAME\`.`);
    await tx
      .insert(teamMembers)
      .values({ teamId: team.id, identityId: member.id, role: input.role, addedBy: caller.id })
      .onConflictDoUpdate({ target: [teamMembers.teamId, teamMembers.identityId], set: { role: input.role, addedBy: caller.id } });
    await audit(tx, {
      identity: caller,
      action: 'team.member.set',
      decision: 'allow',
      subject: `team:${team.name}`,
      rule: 'team maintainers and admins manage members',
      details: { member: member.name, role: input.role },
    });
    return { team, memberId: member.id };
  });
  await tokensChanged(db, [memberId]);
  return team;
}

export async function removeTeamMember(db: Db, ability: AppAbility, caller: Identity, input: { team: string; identity: string }): Promise<Team> {
  const { team, memberId } = await db.transaction(async (tx) => {
    const team = await teamByName(tx, input.team);
    await assertMayManageTeam(tx, ability, team);
    const [member] = await tx.select().from(identities).where(eq(identities.name, input.identity));
    if (!member) throw notFound(`No user or service account named "${input.identity}"; an admin creates a user with \`atelier user create NAME\`.`);
    const removed = await tx
      .delete(teamMembers)
      .where(and(eq(teamMembers.teamId, team.id), eq(teamMembers.identityId, member.id)))
      .returning({ id: teamMembers.identityId });
    if (!removed.length) throw notFound(`"${input.identity}" is not a member of team "${team.name}".`);
    await audit(tx, {
      identity: caller,
      action: 'team.member.remove',
      decision: 'allow',
      subject: `team:${team.name}`,
      rule: 'team maintainers and admins manage members',
      details: { member: member.name },
    });
    return { team, memberId: member.id };
  });
  await tokensChanged(db, [memberId]);
  return team;
}

/** Gives a namespace to a team: claims an unowned one, or (admins only) moves one between teams. */
export async function assignNamespace(db: Db, ability: AppAbility, caller: Identity, input: { name: string; team: string }): Promise<Namespace> {
  if (!teamNameRe.test(input.name)) throw badInput(`"${input.name}" is not a valid namespace: use 1–64 lowercase letters, digits, "-", "_" or ".".`);
  return db.transaction(async (tx) => {
    const team = await teamByName(tx, input.team);
    await assertMayManageTeam(tx, ability, team);
    const [current] = await tx.select().from(namespaces).where(eq(namespaces.name, input.name)).for('update');
    if (current && current.teamId !== team.id && !isAdmin(ability)) {
      throw forbidden(`Namespace "${input.name}" already belongs to another team; only an admin can move it.`);
    }
    const [row] = await tx
      .insert(namespaces)
      .values({ name: input.name, teamId: team.id, createdBy: caller.id })
      .onConflictDoUpdate({ target: namespaces.name, set: { teamId: team.id } })
      .returning();
    await audit(tx, {
      identity: caller,
      action: 'namespace.assign',
      decision: 'allow',
      subject: `namespace:${input.name}`,
      rule: current ? 'admins move namespaces between teams' : 'team maintainers claim unowned namespaces',
      details: { team: team.name },
    });
    return row!;
  });
}

/** The namespace with its owner and writers, as the ability checks it. */
export async function loadNamespaceSubject(db: Db | Tx, name: string): Promise<NamespaceSubject> {
  const [row] = await db
    .select({ ns: namespaces, team: teams })
    .from(namespaces)
    .innerJoin(teams, eq(teams.id, namespaces.teamId))
    .where(eq(namespaces.name, name));
  if (!row) return { name, team: null, writers: [] };
  return { name, team: row.team.name, writers: await membersWithRoles(db, row.team.id, teamWriterRoles) };
}

/** Throws FORBIDDEN unless the caller may publish into the namespace and move its tags. */
export async function assertMayWriteNamespace(db: Db | Tx, ability: AppAbility, namespace: string): Promise<void> {
  const ns = await loadNamespaceSubject(db, namespace);
  if (ability.can('publish', namespaceSubject(ns))) return;
  if (!ns.team) {
    throw forbidden(
      `Namespace "${namespace}" is not owned by any team, so only admins may publish into it. ` +
        `A team maintainer can claim it: \`npx atelier namespace create ${namespace} --team TEAM\`.`,
    );
  }
  throw forbidden(
    `Only members of team "${ns.team}" and its service accounts may publish to or move tags in namespace "${namespace}"; ` +
      `ask a maintainer of "${ns.team}" to add you: \`npx atelier team add ${ns.team} NAME --role member\`.`,
  );
}
