// Reads of teams for the API: by id, the team list, each team's members and namespaces, the owner of each
// namespace, and the domains a team is granted.
import { and, asc, eq, inArray } from 'drizzle-orm';
import type { Db } from '../db/client';
import { domainGrants } from '../db/tables/governance';
import { namespaces, type Team, type TeamMember, teamMembers, teams } from '../db/tables/teams';
import { type Domain, teamWriterRoles } from '../vocabulary';

export const teamsByIds = (db: Db, ids: string[]): Promise<Team[]> => db.select().from(teams).where(inArray(teams.id, ids));

/** Teams by name (at most 1,000). */
export const listTeams = (db: Db): Promise<Team[]> => db.select().from(teams).orderBy(asc(teams.name)).limit(1000);

/** The members of each team, longest-standing first. */
export const membersOfTeams = (db: Db, teamIds: string[]): Promise<TeamMember[]> =>
  db.select().from(teamMembers).where(inArray(teamMembers.teamId, teamIds)).orderBy(asc(teamMembers.createdAt));

/** The namespaces each team owns, by name. */
export const namespacesOfTeams = (db: Db, teamIds: string[]): Promise<{ name: string; teamId: string }[]> =>
  db.select({ name: namespaces.name, teamId: namespaces.teamId }).from(namespaces).where(inArray(namespaces.teamId, teamIds)).orderBy(asc(namespaces.name));

/** The team owning each of these namespaces (an unowned one is left out). */
export async function ownersOfNamespaces(db: Db, names: string[]): Promise<Map<string, Team>> {
  const rows = await db
    .select({ name: namespaces.name, team: teams })
    .from(namespaces)
    .innerJoin(teams, eq(teams.id, namespaces.teamId))
    .where(inArray(namespaces.name, names));
  return new Map(rows.map((r) => [r.name, r.team]));
}

/** The domains beyond experimentation a team's members may start runs in. */
export async function domainsGrantedTo(db: Db, teamId: string): Promise<Domain[]> {
  return (await db.select({ domain: domainGrants.domain }).from(domainGrants).where(eq(domainGrants.teamId, teamId))).map((g) => g.domain);
}

/** The teams an identity acts for (a writing role; a team's viewers own nothing of it), by name. */
export const writableTeamsOf = (db: Db, identityId: string): Promise<{ id: string; name: string }[]> =>
  db
    .select({ id: teams.id, name: teams.name })
    .from(teamMembers)
    .innerJoin(teams, eq(teams.id, teamMembers.teamId))
    .where(and(eq(teamMembers.identityId, identityId), inArray(teamMembers.role, [...teamWriterRoles])))
    .orderBy(asc(teams.name));
