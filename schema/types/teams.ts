// Teams, their members and the module namespaces they own.
import { asc, eq } from 'drizzle-orm';
import { assertCan } from '../../server/auth/ability';
import { teamRoles, teams, type Team, type TeamMember } from '../../server/db/tables/teams';
import { assignNamespace, createTeam, removeTeamMember, setTeamMember } from '../../server/teams/teams';
import { domainGrants } from '../../server/db/tables/governance';
import { setDomainGrant } from '../../server/governance/grants';
import { guard } from '../auth';
import { NodeRef } from '../node';
import { builder } from '../builder';
import { DomainEnum } from './runs';
import { IdentityRef } from './identity';

export const TeamRef = builder.objectRef<Team>('Team');
const TeamRoleEnum = builder.enumType('TeamRole', {
  values: teamRoles,
  description: 'viewer: reads; member: publishes into the team’s namespaces and moves their tags; maintainer and admin: also manage members and namespaces.',
});

const TeamMemberRef = builder.objectRef<TeamMember>('TeamMember').implement({
  fields: (t) => ({
    identity: t.field({ type: IdentityRef, resolve: async (m, _a, ctx) => (await ctx.loaders.identity.load(m.identityId))! }),
    role: t.field({ type: TeamRoleEnum, resolve: (m) => m.role }),
    since: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

TeamRef.implement({
  authScopes: guard('Team', 'Team'),
  interfaces: [NodeRef],
  description: 'A group of people and service accounts that owns module namespaces.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    description: t.exposeString('description'),
    members: t.field({ type: [TeamMemberRef], resolve: (team, _a, ctx) => ctx.loaders.membersOf.load(team.id) }),
    domains: t.stringList({
      description: 'Domains beyond experimentation its members may start runs in.',
      resolve: async (team, _a, ctx) => (await ctx.services.db.select({ domain: domainGrants.domain }).from(domainGrants).where(eq(domainGrants.teamId, team.id))).map((g) => g.domain),
    }),
    namespaces: t.stringList({ description: 'Module namespaces this team owns.', resolve: async (team, _a, ctx) => (await ctx.loaders.namespacesOf.load(team.id)).map((n) => n.name) }),
  }),
});

builder.queryFields((t) => ({
  teams: t.field({
    type: [TeamRef],
    resolve: (_root, _args, ctx) => {
      assertCan(ctx.ability, 'read', 'Team', 'list teams');
      return ctx.services.db.select().from(teams).orderBy(asc(teams.name)).limit(1000);
    },
  }),
  team: t.field({
    type: TeamRef,
    nullable: true,
    args: { name: t.arg.string({ required: true }) },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Team', 'read teams');
      const [team] = await ctx.services.db.select().from(teams).where(eq(teams.name, args.name));
      return team ?? null;
    },
  }),
}));

builder.mutationFields((t) => ({
  createTeam: t.field({
    type: TeamRef,
    description: 'Creates a team; its creator becomes its admin. Admins only.',
    args: { name: t.arg.string({ required: true }), description: t.arg.string() },
    resolve: (_root, args, ctx) => createTeam(ctx.services.db, ctx.ability, ctx.identity, { name: args.name, description: args.description ?? undefined }),
  }),
  setTeamMember: t.field({
    type: TeamRef,
    description: 'Adds a user or service account to a team, or changes its role there. Team maintainers and admins.',
    args: { team: t.arg.string({ required: true }), identity: t.arg.string({ required: true, description: 'User or service account name.' }), role: t.arg({ type: TeamRoleEnum, defaultValue: 'member' }) },
    resolve: (_root, args, ctx) => setTeamMember(ctx.services.db, ctx.ability, ctx.identity, { team: args.team, identity: args.identity, role: args.role ?? 'member' }),
  }),
  removeTeamMember: t.field({
    type: TeamRef,
    args: { team: t.arg.string({ required: true }), identity: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => removeTeamMember(ctx.services.db, ctx.ability, ctx.identity, { team: args.team, identity: args.identity }),
  }),
  grantDomain: t.field({
    type: TeamRef,
    description: 'Lets a team’s members start runs in a domain (`granted: false` revokes it). Admins only.',
    args: { team: t.arg.string({ required: true }), domain: t.arg({ type: DomainEnum, required: true }), granted: t.arg.boolean({ defaultValue: true }) },
    resolve: (_root, args, ctx) => setDomainGrant(ctx.services.db, ctx.ability, ctx.identity, { team: args.team, domain: args.domain, granted: args.granted ?? true }),
  }),
  assignNamespace: t.field({
    type: TeamRef,
    description: 'Gives a module namespace to a team: claims an unowned one (team maintainers), or moves one between teams (admins).',
    args: { namespace: t.arg.string({ required: true }), team: t.arg.string({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const ns = await assignNamespace(ctx.services.db, ctx.ability, ctx.identity, { name: args.namespace, team: args.team });
      return (await ctx.loaders.team.load(ns.teamId))!;
    },
  }),
}));
