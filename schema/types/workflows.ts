// Workflows and their versions: listing, reading and creating from a YAML or JSON spec.
import { asc, eq } from 'drizzle-orm';
import { assertCan } from '../../server/auth/ability';
import { workflows, type Workflow, type WorkflowVersion } from '../../server/db/tables/workflows';
import { createWorkflow } from '../../server/orchestrator/workflows';
import { guard } from '../auth';
import { NodeRef } from '../node';
import { assertMayIn } from '../../server/governance/grants';
import { builder } from '../builder';
import { IdentityRef } from './identity';

export const WorkflowRef = builder.objectRef<Workflow>('Workflow');
export const WorkflowVersionRef = builder.objectRef<WorkflowVersion>('WorkflowVersion');

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
      resolve: async (w, _a, ctx) => (await ctx.loaders.versionsOfWorkflow.load(w.id)).find((v) => v.version === w.latestVersion)!,
    }),
    versions: t.field({
      type: [WorkflowVersionRef],
      resolve: (w, _a, ctx) => ctx.loaders.versionsOfWorkflow.load(w.id),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    createdBy: t.field({ type: IdentityRef, nullable: true, resolve: (w, _a, ctx) => (w.createdBy ? ctx.loaders.identity.load(w.createdBy) : null) }),
  }),
});

WorkflowVersionRef.implement({
  authScopes: guard('WorkflowVersion', 'Workflow', async (v: WorkflowVersion, ctx) => ({ ...v, domain: (await ctx.loaders.workflow.load(v.workflowId))?.domain ?? 'production' })),
  interfaces: [NodeRef],
  description: 'One immutable version of a workflow spec.',
  fields: (t) => ({
    id: t.exposeID('id'),
    version: t.exposeInt('version'),
    spec: t.expose('spec', { type: 'JSON' }),
    digest: t.exposeString('digest'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    workflow: t.field({ type: WorkflowRef, resolve: async (v, _a, ctx) => (await ctx.loaders.workflow.load(v.workflowId))! }),
  }),
});

builder.queryFields((t) => ({
  workflows: t.field({
    type: [WorkflowRef],
    resolve: (_root, _args, ctx) => {
      assertCan(ctx.ability, 'read', 'Workflow', 'list workflows');
      return ctx.services.db.select().from(workflows).orderBy(asc(workflows.name)).limit(1000);
    },
  }),
  workflow: t.field({
    type: WorkflowRef,
    nullable: true,
    args: { name: t.arg.string({ required: true }) },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Workflow', 'read workflows');
      const [w] = await ctx.services.db.select().from(workflows).where(eq(workflows.name, args.name));
      return w ?? null;
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
    description: 'Creates a workflow, or a new version of it, from a YAML or JSON spec. The spec is checked (cycles, dependencies, modules, parameters) before anything is written.',
    args: { spec: t.arg.string({ required: true, description: 'The spec as YAML or JSON text.' }) },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'create', 'Workflow', 'create workflows');
      // A new version changes what runs in the workflow's domain (and may move it to another): both need a grant.
      return createWorkflow(ctx.services.db, args.spec, ctx.identity, ctx.services.planDefaults, ({ before, after }) => {
        if (before && before !== after) assertMayIn(ctx.ability, 'update', 'Workflow', before, 'move a workflow out of its domain');
        assertMayIn(ctx.ability, before ? 'update' : 'create', 'Workflow', after, before ? 'change workflows' : 'create workflows');
      });
    },
  }),
}));
