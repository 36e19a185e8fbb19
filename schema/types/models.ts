// The model registry's types and queries: models, versions (with label and lineage), aliases with their history,
// promotion requests, and the reverse lineage on a dataset version. The work is in server/registry/.
import type { ModelAlias, ModelAliasEvent, ModelPromotion, ModelVersion, RegisteredModel } from '../../server/db/tables/registry';
import { type ColumnRead, columnsRead, labelOfColumns } from '../../server/governance/model-labels';
import { type Lineage, lineageOf, modelVersionsFromDataset } from '../../server/registry/lineage';
import { findModelVersion, modelByName } from '../../server/registry/models';
import {
  aliasEventsOfModels,
  aliasesOfModels,
  listModels,
  modelsByIds,
  modelVersionsByIds,
  pendingPromotions,
  promotionsOfModels,
  versionsOfModels,
} from '../../server/registry/queries';
import { ownersOfNamespaces } from '../../server/teams/queries';
import { promotionStates } from '../../server/vocabulary';
import { guard } from '../auth';
import { builder } from '../builder';
import type { Context } from '../context';
import { groupLoader, sharedLoader } from '../loaders';
import { NodeRef } from '../node';
import { DatasetRef, DatasetVersionRef, LabelRef } from './datasets';
import { DomainEnum } from './enums';
import { IdentityRef } from './identity';
import { ModuleVersionRef } from './modules';
import { RunRef } from './runs';
import { DeclaredDatasetRef, TaskRef } from './tasks';
import { TeamRef } from './teams';

export const ModelRef = builder.loadableObjectRef('Model', {
  load: (ids: string[], ctx: Context) => modelsByIds(ctx.services.db, ids),
  sort: (m) => m.id,
});
export const ModelVersionRef = builder.loadableObjectRef('ModelVersion', {
  load: (ids: string[], ctx: Context) => modelVersionsByIds(ctx.services.db, ids),
  sort: (v) => v.id,
});

const versionsOf = groupLoader(
  (ids, ctx) => versionsOfModels(ctx.services.db, ids),
  (v) => v.modelId,
);
const aliasesOf = groupLoader(
  (ids, ctx) => aliasesOfModels(ctx.services.db, ids),
  (a) => a.modelId,
);
const readOf = sharedLoader<string, ColumnRead[]>(async (ids, ctx) => {
  const read = await columnsRead(ctx.services.db, ids);
  return ids.map((id) => read.get(id) ?? []);
});
// The lineage of a version, read once per request however many of its fields (task, metrics, lineage) ask; its
// columns are the ones `label` loads (one read of the version's inputs serves both).
const lineages = new WeakMap<Context, Map<string, Promise<Lineage>>>();
function lineage(ctx: Context, version: ModelVersion): Promise<Lineage> {
  let perRequest = lineages.get(ctx);
  if (!perRequest) lineages.set(ctx, (perRequest = new Map()));
  let found = perRequest.get(version.id);
  if (!found) perRequest.set(version.id, (found = lineageOf(ctx.services.db, version, readOf(ctx).load(version.id))));
  return found;
}

export const PromotionStateEnum = builder.enumType('ModelPromotionState', { values: promotionStates });

const RequirementRef = builder.objectRef<RegisteredModel['requirements'][number]>('ModelRequirement').implement({
  description: 'A bound on an evaluation metric a version must meet to be promoted to production.',
  fields: (t) => ({
    metric: t.exposeString('metric'),
    min: t.exposeFloat('min', { nullable: true }),
    max: t.exposeFloat('max', { nullable: true }),
  }),
});

const AliasRef = builder.objectRef<ModelAlias>('ModelAlias').implement({
  description: 'A movable pointer to a version, living in a domain (in production it moves by approved promotions only).',
  fields: (t) => ({
    alias: t.exposeString('alias'),
    domain: t.field({ type: DomainEnum, resolve: (a) => a.domain }),
    version: t.field({ type: ModelVersionRef, resolve: (a) => a.versionId }),
    updatedBy: t.field({ type: IdentityRef, nullable: true, resolve: (a) => a.updatedBy }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const AliasEventRef = builder.objectRef<ModelAliasEvent>('ModelAliasEvent').implement({
  description: 'One move of an alias: who, from, to, when and why (move, rollback or an approved promotion).',
  fields: (t) => ({
    alias: t.exposeString('alias'),
    domain: t.field({ type: DomainEnum, resolve: (e) => e.domain }),
    from: t.field({ type: ModelVersionRef, nullable: true, resolve: (e) => e.fromVersionId }),
    to: t.field({ type: ModelVersionRef, resolve: (e) => e.toVersionId }),
    movedBy: t.field({ type: IdentityRef, nullable: true, resolve: (e) => e.movedBy }),
    action: t.exposeString('action'),
    reason: t.exposeString('reason'),
    promotionId: t.exposeID('promotionId', { nullable: true }),
    at: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

export const PromotionRef = builder.objectRef<ModelPromotion>('ModelPromotion').implement({
  description: 'A request to point a production alias at a version, decided by a second person holding the production grant.',
  fields: (t) => ({
    id: t.exposeID('id'),
    model: t.field({ type: ModelRef, resolve: (p) => p.modelId }),
    version: t.field({ type: ModelVersionRef, resolve: (p) => p.versionId }),
    alias: t.exposeString('alias'),
    domain: t.field({ type: DomainEnum, resolve: (p) => p.domain }),
    reason: t.exposeString('reason'),
    state: t.field({ type: PromotionStateEnum, resolve: (p) => p.state }),
    requestedBy: t.field({ type: IdentityRef, resolve: (p) => p.requestedBy }),
    decidedBy: t.field({ type: IdentityRef, nullable: true, resolve: (p) => p.decidedBy }),
    decisionReason: t.exposeString('decisionReason', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    decidedAt: t.expose('decidedAt', { type: 'DateTime', nullable: true }),
  }),
});

ModelRef.implement({
  authScopes: guard('Model', 'Model'),
  interfaces: [NodeRef],
  description: 'A registered model `namespace/name`, owned by the team owning its namespace.',
  fields: (t) => ({
    id: t.exposeID('id'),
    namespace: t.exposeString('namespace'),
    name: t.exposeString('name'),
    fullName: t.string({ resolve: (m) => `${m.namespace}/${m.name}` }),
    description: t.exposeString('description'),
    owner: t.loadable({
      type: TeamRef,
      nullable: true,
      description: 'The team owning the namespace; null while none does.',
      load: async (names: string[], ctx: Context) => {
        const owners = await ownersOfNamespaces(ctx.services.db, names);
        return names.map((n) => owners.get(n) ?? null);
      },
      resolve: (m) => m.namespace,
    }),
    requirements: t.field({ type: [RequirementRef], resolve: (m) => m.requirements }),
    versions: t.field({ type: [ModelVersionRef], description: 'Newest first.', resolve: (m, _a, ctx) => versionsOf(ctx).load(m.id) }),
    version: t.field({
      type: ModelVersionRef,
      nullable: true,
      description: 'One version by number or alias (`latest`: the newest).',
      args: { selector: t.arg.string({ required: true }) },
      resolve: (m, args, ctx) =>
        findModelVersion(ctx.services.db, `${m.namespace}/${m.name}@${args.selector}`).then(
          ({ version }) => version,
          () => null,
        ),
    }),
    aliases: t.field({ type: [AliasRef], resolve: (m, _a, ctx) => aliasesOf(ctx).load(m.id) }),
    aliasHistory: t.loadableGroup({
      type: AliasEventRef,
      description: 'Every alias move, newest first.',
      load: (ids: string[], ctx: Context) => aliasEventsOfModels(ctx.services.db, ids),
      group: (e) => e.modelId,
      resolve: (m) => m.id,
    }),
    promotions: t.loadableGroup({
      type: PromotionRef,
      description: 'Promotion requests, newest first.',
      load: (ids: string[], ctx: Context) => promotionsOfModels(ctx.services.db, ids),
      group: (p) => p.modelId,
      resolve: (m) => m.id,
    }),
    createdBy: t.field({ type: IdentityRef, nullable: true, resolve: (m) => m.createdBy }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const FileRef = builder.objectRef<ModelVersion['files'][number]>('ModelFile').implement({
  fields: (t) => ({ path: t.exposeString('path'), digest: t.exposeString('digest'), size: t.exposeInt('size') }),
});

const LineageColumnRef = builder.objectRef<ColumnRead>('ModelLineageColumn').implement({
  description: 'A dataset column that flowed into a version, with its current label.',
  fields: (t) => ({ name: t.exposeString('column'), label: t.field({ type: LabelRef, resolve: (c) => c.label }) }),
});

const LineageDatasetRef = builder.objectRef<Lineage['datasets'][number]>('ModelLineageDataset').implement({
  description: 'A dataset version read by the producing task or a task upstream of it.',
  fields: (t) => ({
    dataset: t.field({ type: DatasetRef, resolve: (d) => d.datasetId }),
    name: t.exposeString('dataset'),
    version: t.exposeInt('version'),
    digest: t.exposeString('digest', { nullable: true }),
    columns: t.field({ type: [LineageColumnRef], resolve: (d) => d.columns }),
  }),
});

const LineageMetricRef = builder.objectRef<Lineage['metrics'][number]>('ModelLineageMetric').implement({
  fields: (t) => ({
    name: t.exposeString('name'),
    value: t.expose('last', { type: 'MetricValue' }),
    step: t.exposeInt('lastStep'),
    taskId: t.exposeID('taskId'),
  }),
});

const LineageModelRef = builder.objectRef<Lineage['models'][number]>('ModelLineageModel').implement({
  description: 'A model version read by the producing task or a task upstream of it: what this version learned from it counts in its label.',
  fields: (t) => ({
    ref: t.exposeString('ref', { description: 'namespace/name@VERSION' }),
    port: t.exposeString('port', { description: 'The model input the task took it as.' }),
    taskId: t.exposeID('taskId'),
  }),
});

const LineageRef = builder.objectRef<Lineage>('ModelLineage').implement({
  description: 'Everything a version came from: task, run, module versions, datasets and columns read, model versions read, parameters, metrics, cache key.',
  fields: (t) => ({
    task: t.field({ type: TaskRef, resolve: (l) => l.task }),
    run: t.field({ type: RunRef, resolve: (l) => l.run.id }),
    moduleVersions: t.field({ type: [ModuleVersionRef], resolve: (l) => l.moduleVersionIds }),
    datasets: t.field({ type: [LineageDatasetRef], resolve: (l) => l.datasets }),
    parameters: t.field({ type: 'JSON', description: 'The run’s parameters with the producing task’s.', resolve: (l) => l.parameters }),
    loggedParams: t.field({ type: 'JSON', description: 'Parameters the run logged itself.', resolve: (l) => l.loggedParams }),
    metrics: t.field({ type: [LineageMetricRef], description: 'The run’s metric summaries, the producing task’s first.', resolve: (l) => l.metrics }),
    cacheKey: t.exposeString('cacheKey', { nullable: true }),
    models: t.field({ type: [LineageModelRef], resolve: (l) => l.models }),
    loggedDatasets: t.field({
      type: [DeclaredDatasetRef],
      description: 'Datasets the run’s MLflow client declared (runs/log-inputs), the producing task’s first.',
      resolve: (l) => l.loggedDatasets,
    }),
  }),
});

ModelVersionRef.implement({
  authScopes: guard('ModelVersion', 'ModelVersion'),
  interfaces: [NodeRef],
  description: 'An immutable, content-addressed version of a model, registered from a task output.',
  fields: (t) => ({
    id: t.exposeID('id'),
    model: t.field({ type: ModelRef, resolve: (v) => v.modelId }),
    version: t.exposeInt('version'),
    ref: t.string({
      resolve: async (v, _a, ctx) =>
        `${await ModelRef.getDataloader(ctx)
          .load(v.modelId)
          .then((m) => `${m.namespace}/${m.name}`)}@${v.version}`,
    }),
    digest: t.exposeString('digest'),
    flavor: t.exposeString('flavor', { nullable: true }),
    domain: t.field({ type: DomainEnum, description: 'The domain of the run that produced it.', resolve: (v) => v.domain }),
    label: t.field({
      type: LabelRef,
      description: 'The join of the current labels of every column that flowed into it (UNCLASSIFIED above all).',
      resolve: async (v, _a, ctx) => labelOfColumns(await readOf(ctx).load(v.id)),
    }),
    aliases: t.field({
      type: [AliasRef],
      resolve: async (v, _a, ctx) => (await aliasesOf(ctx).load(v.modelId)).filter((a) => a.versionId === v.id),
    }),
    deprecated: t.boolean({ resolve: (v) => v.deprecatedAt !== null }),
    deprecatedAt: t.expose('deprecatedAt', { type: 'DateTime', nullable: true }),
    deprecationReason: t.exposeString('deprecationReason', { nullable: true }),
    createdBy: t.field({ type: IdentityRef, nullable: true, resolve: (v) => v.createdBy }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    files: t.field({ type: [FileRef], nullable: true, resolve: (v) => v.files }),
    signature: t.field({ type: 'JSON', nullable: true, resolve: (v) => v.signature }),
    metadata: t.field({ type: 'JSON', nullable: true, resolve: (v) => v.metadata }),
    cacheKey: t.exposeString('cacheKey', { nullable: true }),
    task: t.field({ type: TaskRef, nullable: true, resolve: async (v, _a, ctx) => (await lineage(ctx, v)).task }),
    run: t.field({ type: RunRef, nullable: true, resolve: (v) => v.runId }),
    metrics: t.field({ type: [LineageMetricRef], nullable: true, resolve: async (v, _a, ctx) => (await lineage(ctx, v)).metrics }),
    lineage: t.field({
      type: LineageRef,
      nullable: true,
      description: 'Null (with a FORBIDDEN error) unless your teams are granted the producing run’s domain.',
      resolve: (v, _a, ctx) => lineage(ctx, v),
    }),
  }),
});

builder.objectFields(DatasetVersionRef, (t) => ({
  models: t.field({
    type: [ModelVersionRef],
    description: 'The model versions this dataset version flowed into (through the task that read it or one downstream).',
    resolve: (v, _a, ctx) => modelVersionsFromDataset(ctx.services.db, v.datasetId, v.version),
  }),
}));

builder.queryFields((t) => ({
  models: t.field({
    type: [ModelRef],
    description: 'Registered models by name (at most `first`, 100 unless given).',
    args: { namespace: t.arg.string(), search: t.arg.string(), first: t.arg.int() },
    resolve: (_r, args, ctx) =>
      listModels(ctx.services.db, { namespace: args.namespace, search: args.search, limit: Math.min(Math.max(args.first ?? 100, 1), 1000) }),
  }),
  model: t.field({
    type: ModelRef,
    nullable: true,
    args: { name: t.arg.string({ required: true, description: 'namespace/name' }) },
    resolve: (_r, args, ctx) => modelByName(ctx.services.db, args.name),
  }),
  modelVersion: t.field({
    type: ModelVersionRef,
    nullable: true,
    args: { ref: t.arg.string({ required: true, description: 'namespace/name@VERSION or namespace/name@ALIAS' }) },
    resolve: (_r, args, ctx) =>
      findModelVersion(ctx.services.db, args.ref).then(
        ({ version }) => version,
        () => null,
      ),
  }),
  modelPromotions: t.field({
    type: [PromotionRef],
    description: 'Promotion requests in a state (PENDING unless given), newest first.',
    args: { state: t.arg({ type: PromotionStateEnum }), first: t.arg.int() },
    resolve: (_r, args, ctx) => pendingPromotions(ctx.services.db, args.state ?? 'PENDING', Math.min(Math.max(args.first ?? 100, 1), 1000)),
  }),
}));
