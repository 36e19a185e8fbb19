// The domains an identity holds through its teams' grants: the query the token lookup and the ability builder share.
// Granting and revoking live in governance/grants.ts.
import { type SQLWrapper, sql } from 'drizzle-orm';
import { type Db, queryRows, type Tx } from '../db/client';
import { domainGrants } from '../db/tables/governance';
import type { Identity } from '../db/tables/identities';
import { teamMembers } from '../db/tables/teams';
import { type Domain, domains, teamWriterRoles } from '../vocabulary';
import type { Grants } from './ability';

/** The writing roles as an SQL list, built once: the token lookup runs this subquery on every request. */
const writerRolesSql = sql.raw(`(${teamWriterRoles.map((r) => `'${r}'`).join(', ')})`);

/**
 * The domains granted to the teams an identity (`identityId`, a column or a value) belongs to with a writing role
 * (viewers of a team get none of its grants): a subquery, so the token lookup can read it in the same statement.
 */
export const grantedDomains = (identityId: SQLWrapper | string) => sql<Domain[]>`array(
  select distinct ${domainGrants.domain} from ${domainGrants}
  join ${teamMembers} on ${teamMembers.teamId} = ${domainGrants.teamId}
  where ${teamMembers.identityId} = ${identityId} and ${teamMembers.role} in ${writerRolesSql})`;

/** An identity's grants from its teams' domains: an admin holds every domain. */
export const grantsFrom = (identity: Pick<Identity, 'role'>, granted: Domain[]): Grants => ({ domains: identity.role === 'admin' ? [...domains] : granted });

/** The grants of an identity's teams. One query. */
export async function grantsOf(db: Db | Tx, identity: Pick<Identity, 'id' | 'role'>): Promise<Grants> {
  if (identity.role === 'admin') return grantsFrom(identity, []);
  const [row] = await queryRows<{ granted: Domain[] }>(db, sql`select ${grantedDomains(identity.id)} as granted`);
  return grantsFrom(identity, row?.granted ?? []);
}
