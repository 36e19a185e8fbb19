// Workflows and their versions: listing, reading and creating from a YAML or JSON spec.
import { assertCan } from '../../server/auth/ability';
import type { Workflow, WorkflowVersion } from '../../server/db/tables/workflows';
import { assertMayIn } from '../../server/governance/grants';
import { ownerOf } from '../../server/teams/ownership';
import { moreGuarded } from '../../server/vocabulary';
import { listWorkflows, versionsOfWorkflows, workflowsByIds, workflowVersionsByIds, workflowWithName } from '../../server/workflows/queries';
import { createWorkflow } from '../../server/workflows/versions';
import { guard } from '../auth';
import { builder } from '../builder';
import type { Context } from '../context';
import { groupLoader } from '../loaders';
import { NodeRef } from '../node';
import { IdentityRef } from './identity';
import { TeamRef } from './teams';

/** Workflows and their versions by id, each loaded once per request however many fields name it. */
export const WorkflowRef = builder.loadableObjectRef('Workflow', {
  load: (ids: string[], ctx: Context) => workflowsByIds(ctx.services.db, ids),
  sort: (w) => w.id,
});
export const WorkflowVersionRef = builder.loadableObjectRef('WorkflowVersion', {
  load: (ids: string[], ctx: Context) => workflowVersionsByIds(ctx.services.db, ids),
  sort: (v) => v.id,
});

/** Each workflow's versions, newest first (`versions` and `latestVersion` share it). */
const versionsOf = groupLoader(
  (ids, ctx) => versionsOfWorkflows(ctx.services.db, ids),
  (v) => v.workflowId,
);

WorkflowRef.implement({
  authScopes: guard('Workflow', 'Workflow'),
  interfaces: [NodeRef],
  description: 'A named, versioned DAG of module tasks that belongs to a data domain.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    description: t.exposeString('description'),
    domain: t.exposeString('domain'),
    latestVersion: t.field({
      type: WorkflowVersionRef,
      resolve: async (w, _a, ctx) => (await versionsOf(ctx).load(w.id)).find((v) => v.version === w.latestVersion)!,
    }),
    versions: t.field({
      type: [WorkflowVersionRef],
      resolve: (w, _a, ctx) => versionsOf(ctx).load(w.id),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    createdBy: t.field({ type: IdentityRef, nullable: true, resolve: (w) => w.createdBy }),
    team: t.field({
      type: TeamRef,
      nullable: true,
      description: 'The team that owns it: only its members (and admins) publish new versions. None: only its creator (and admins).',
      resolve: (w) => w.teamId,
    }),
  }),
});

WorkflowVersionRef.implement({
  // A version's spec stays the data of the domain it was published in, even after its workflow moved to a more open one.
  authScopes: guard('WorkflowVersion', 'Workflow', async (v: WorkflowVersion, ctx) => ({
    ...v,
    domain: moreGuarded((await WorkflowRef.getDataloader(ctx).load(v.workflowId))?.domain ?? 'production', v.spec.domain ?? 'experimentation'),
  })),
  interfaces: [NodeRef],
  description: 'One immutable version of a workflow spec.',
  fields: (t) => ({
    id: t.exposeID('id'),
    version: t.exposeInt('version'),
    spec: t.expose('spec', {
      type: 'JSON',
      nullable: true,
      description:
        'The spec, with its parameter defaults: null (with a FORBIDDEN error) unless your teams are granted the workflow’s domain and the domain this version was published in.',
    }),
    digest: t.exposeString('digest', {
      nullable: true,
      description: 'A hash of the spec (so of its defaults): null (with a FORBIDDEN error) unless your teams are granted the workflow’s domain.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    workflow: t.field({ type: WorkflowRef, resolve: (v) => v.workflowId }),
  }),
});

builder.queryFields((t) => ({
  workflows: t.field({
    type: [WorkflowRef],
    resolve: (_root, _args, ctx) => {
      assertCan(ctx.ability, 'read', 'Workflow', 'list workflows');
      return listWorkflows(ctx.services.db);
    },
  }),
  workflow: t.field({
    type: WorkflowRef,
    nullable: true,
    args: { name: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Workflow', 'read workflows');
      return workflowWithName(ctx.services.db, args.name);
    },
  }),
}));

const CreateWorkflowResult = builder.objectRef<{ workflow: Workflow; version: WorkflowVersion; created: boolean }>('CreateWorkflowResult').implement({
  fields: (t) => ({
    workflow: t.field({ type: WorkflowRef, resolve: (r) => r.workflow }),
    version: t.field({ type: WorkflowVersionRef, resolve: (r) => r.version }),
    created: t.exposeBoolean('created', { description: 'False when the spec is identical to the latest version.' }),
  }),
});

builder.mutationFields((t) => ({
  createWorkflow: t.field({
    type: CreateWorkflowResult,
    description:
      'Creates a workflow, or a new version of it, from a YAML or JSON spec. The spec is checked (cycles, dependencies, modules, parameters) before anything is written.',
    args: {
      spec: t.arg.string({ required: true, description: 'The spec as YAML or JSON text.' }),
      team: t.arg.string({
        description:
          'The team that owns a new workflow (one of yours; default: your only team, none when you are in no team). Only its members publish new versions.',
      }),
    },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'create', 'Workflow', 'create workflows');
      // A new version changes what runs in the workflow's domain (and may move it to another): both need a grant,
      // and only the workflow's owners may publish it.
      return createWorkflow(ctx.services.db, args.spec, ctx.identity, ctx.services.planDefaults, {
        owner: ownerOf(ctx.identity, ctx.ability),
        team: args.team,
        authorize: ({ before, after }) => {
          if (before && before !== after) assertMayIn(ctx.ability, 'update', 'Workflow', before, 'move a workflow out of its domain');
          assertMayIn(ctx.ability, before ? 'update' : 'create', 'Workflow', after, before ? 'change workflows' : 'create workflows');
        },
      });
    },
  }),
}));
