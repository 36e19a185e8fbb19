// Teams, their members and the module namespaces they own.
import { assertCan } from '../../server/auth/ability';
import type { TeamMember } from '../../server/db/tables/teams';
import { setDomainGrant } from '../../server/governance/grants';
import { domainsGrantedTo, listTeams, membersOfTeams, namespacesOfTeams, teamsByIds } from '../../server/teams/queries';
import { assignNamespace, createTeam, removeTeamMember, setTeamMember, teamWithName } from '../../server/teams/teams';
import { guard } from '../auth';
import { builder } from '../builder';
import type { Context } from '../context';
import { groupBy } from '../loaders';
import { NodeRef } from '../node';
import { DomainEnum, TeamRoleEnum } from './enums';
import { IdentityRef } from './identity';

/** A team by id, loaded once per request however many fields name it (a missing one is null). */
export const TeamRef = builder.loadableObjectRef('Team', {
  load: (ids: string[], ctx: Context) => teamsByIds(ctx.services.db, ids),
  sort: (team) => team.id,
});

const TeamMemberRef = builder.objectRef<TeamMember>('TeamMember').implement({
  fields: (t) => ({
    identity: t.field({ type: IdentityRef, resolve: (m) => m.identityId }),
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
    members: t.loadableGroup({
      type: TeamMemberRef,
      load: (ids: string[], ctx: Context) => membersOfTeams(ctx.services.db, ids),
      group: (m) => m.teamId,
      resolve: (team) => team.id,
    }),
    domains: t.stringList({
      description: 'Domains beyond experimentation its members may start runs in.',
      resolve: (team, _a, ctx) => domainsGrantedTo(ctx.services.db, team.id),
    }),
    namespaces: t.loadableList({
      type: 'String',
      description: 'Module namespaces this team owns.',
      load: async (ids: string[], ctx: Context) =>
        groupBy(ids, await namespacesOfTeams(ctx.services.db, ids), (n) => n.teamId).map((group) => group.map((n) => n.name)),
      resolve: (team) => team.id,
    }),
  }),
});

builder.queryFields((t) => ({
  teams: t.field({
    type: [TeamRef],
    resolve: (_root, _args, ctx) => {
      assertCan(ctx.ability, 'read', 'Team', 'list teams');
      return listTeams(ctx.services.db);
    },
  }),
  team: t.field({
    type: TeamRef,
    nullable: true,
    args: { name: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Team', 'read teams');
      return teamWithName(ctx.services.db, args.name);
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
    args: {
      team: t.arg.string({ required: true }),
      identity: t.arg.string({ required: true, description: 'User or service account name.' }),
      role: t.arg({ type: TeamRoleEnum, defaultValue: 'member' }),
    },
    resolve: (_root, args, ctx) =>
      setTeamMember(ctx.services.db, ctx.ability, ctx.identity, { team: args.team, identity: args.identity, role: args.role ?? 'member' }),
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
    resolve: (_root, args, ctx) =>
      setDomainGrant(ctx.services.db, ctx.ability, ctx.identity, { team: args.team, domain: args.domain, granted: args.granted ?? true }),
  }),
  assignNamespace: t.field({
    type: TeamRef,
    description: 'Gives a module namespace to a team: claims an unowned one (team maintainers), or moves one between teams (admins).',
    args: { namespace: t.arg.string({ required: true }), team: t.arg.string({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const ns = await assignNamespace(ctx.services.db, ctx.ability, ctx.identity, { name: args.namespace, team: args.team });
      return ns.teamId;
    },
  }),
}));
