// The task cache: a task's hit (Task.cacheHit), why a task missed (cacheExplain), which tasks of a workflow would
// hit before launching it (cachePreview), the savings (cacheStats), and explicit invalidation.
import { assertCan } from '../../server/auth/ability';
import { cacheReaderFor } from '../../server/cache/access';
import { explainTask } from '../../server/cache/explain';
import { invalidateCache } from '../../server/cache/invalidate';
import type { KeyDifference } from '../../server/cache/key';
import { type PreviewTask, previewRun } from '../../server/cache/preview';
import { type CacheStatsRow, cacheSavingsOverTime, cacheStats, MAX_BUCKETS, type SavingsBucket } from '../../server/cache/stats';
import type { CacheEntry } from '../../server/db/tables/cache';
import type { Task } from '../../server/db/tables/runs';
import { isUuid } from '../../server/db/uuid';
import { badInput } from '../../server/errors';
import { assertMayReadSpec } from '../../server/governance/grants';
import { taskById } from '../../server/runs/queries';
import { workflowDomainRef } from '../../server/workflows/queries';
import { guard } from '../auth';
import { builder } from '../builder';
import type { Context } from '../context';
import { CacheGroupingEnum, DomainEnum } from './enums';
import { RunRef } from './runs';
import { TaskRef, taskInstance } from './tasks';

/** What the caller may see of the cache: every read path below answers with this only. */
const readerOf = (ctx: Context) => cacheReaderFor(ctx.ability, ctx.identity, ctx.grants, ctx.services.mayReuse);

const CacheHitRef = builder.objectRef<Task>('CacheHit').implement({
  authScopes: guard('CacheHit', 'Task', taskInstance),
  description: 'A task completed from cache instead of executing.',
  fields: (t) => ({
    sourceTask: t.field({
      type: TaskRef,
      nullable: true,
      description: 'The task whose result was reused.',
      resolve: (task, _a, ctx) => taskById(ctx.services.db, task.cacheSourceTaskId!),
    }),
    sourceRun: t.field({ type: RunRef, nullable: true, resolve: (task) => task.cacheSourceRunId! }),
    savedMs: t.float({ description: 'The source’s execution time: what not executing again saved.', resolve: (task) => task.cacheSavedMs ?? 0 }),
  }),
});

builder.objectFields(TaskRef, (t) => ({
  cacheKey: t.exposeString('cacheKey', {
    nullable: true,
    description:
      'The task’s cache key once it was looked up; null for tasks that are not cached. Run data (a hash of its parameters): null, with a FORBIDDEN error, unless your teams are granted the run’s domain.',
  }),
  cacheHit: t.field({ type: CacheHitRef, nullable: true, resolve: (task) => (task.cacheSourceTaskId ? task : null) }),
}));

const CacheEntryRef = builder.objectRef<CacheEntry>('CacheEntry').implement({
  authScopes: guard('CacheEntry', 'CacheEntry'),
  fields: (t) => ({
    key: t.exposeString('key'),
    module: t.exposeString('module'),
    scope: t.exposeString('scope'),
    sourceTaskId: t.exposeID('sourceTaskId'),
    sourceRunId: t.exposeID('sourceRunId'),
    durationMs: t.exposeFloat('durationMs'),
    hits: t.exposeInt('hits'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime' }),
  }),
});

const KeyDifferenceRef = builder.objectRef<KeyDifference>('CacheKeyDifference').implement({
  fields: (t) => ({
    component: t.exposeString('component', { description: 'format, module, entrypoint, parameter, input, projection, cacheVersion or scope.' }),
    name: t.exposeString('name', { nullable: true, description: 'The parameter or input that differs.' }),
    message: t.exposeString('message'),
  }),
});

const ExplanationRef = builder.objectRef<Awaited<ReturnType<typeof explainTask>>>('CacheExplanation').implement({
  fields: (t) => ({
    taskId: t.exposeID('taskId'),
    key: t.exposeString('key', { nullable: true }),
    hit: t.exposeBoolean('hit'),
    message: t.exposeString('message'),
    nearest: t.field({
      type: CacheEntryRef,
      nullable: true,
      description: 'For a miss: the earlier entry of the module that differs in the fewest components.',
      resolve: (e) => e.nearest,
    }),
    differences: t.field({ type: [KeyDifferenceRef], resolve: (e) => e.differences }),
  }),
});

const PreviewTaskRef = builder.objectRef<PreviewTask>('CachePreviewTask').implement({
  fields: (t) => ({
    node: t.exposeString('node'),
    hit: t.exposeBoolean('hit'),
    key: t.exposeString('key', { nullable: true }),
    reason: t.exposeString('reason'),
    sourceTaskId: t.exposeID('sourceTaskId', { nullable: true }),
    sourceRunId: t.exposeID('sourceRunId', { nullable: true }),
    savedMs: t.exposeFloat('savedMs', { nullable: true }),
  }),
});

const CacheStatsRef = builder.objectRef<CacheStatsRow>('CacheStats').implement({
  description: 'Cache use of one group over a period: tasks looked up in the cache that hit or executed.',
  fields: (t) => ({
    group: t.exposeString('group', { description: 'The team owning the run’s workflow (as in `costs`; "(no team)" for none), the workflow, or the module.' }),
    hits: t.exposeInt('hits'),
    misses: t.exposeInt('misses'),
    hitRate: t.exposeFloat('hitRate'),
    savedHours: t.exposeFloat('savedHours', { description: 'Execution time the hits did not spend, in hours.' }),
  }),
});

const SavingsBucketRef = builder.objectRef<SavingsBucket>('CacheSavingsBucket').implement({
  description: 'Cache use between two boundaries: tasks looked up in the cache that ended in [start, end).',
  fields: (t) => ({
    start: t.expose('start', { type: 'DateTime' }),
    end: t.expose('end', { type: 'DateTime' }),
    hits: t.exposeInt('hits'),
    misses: t.exposeInt('misses'),
    savedHours: t.exposeFloat('savedHours', { description: 'Execution time the hits did not spend, in hours.' }),
  }),
});

builder.queryFields((t) => ({
  cacheExplain: t.field({
    type: ExplanationRef,
    description:
      'Why a task hit or missed the cache: for a miss, which key components differ from the nearest earlier entry you may read. A task whose run data you may not read is not found.',
    args: { taskId: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Task', 'explain cache lookups');
      if (!isUuid(String(args.taskId))) throw badInput(`"${args.taskId}" is not a task id (a UUID); \`atelier run get RUN_ID\` shows its tasks' ids.`);
      return explainTask(ctx.services.db, String(args.taskId), readerOf(ctx));
    },
  }),
  cachePreview: t.field({
    type: [PreviewTaskRef],
    description: 'Which tasks of a workflow would be served from cache (by results you may read) if it started now with these parameters; nothing is started.',
    args: {
      workflow: t.arg.string({ required: true }),
      version: t.arg.int(),
      parameters: t.arg({ type: 'JSON' }),
      domain: t.arg({ type: DomainEnum, description: 'Default: the workflow’s domain.' }),
      cacheNamespace: t.arg.string({ description: 'An experimentation run’s private cache namespace.' }),
    },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Run', 'preview runs');
      const parameters = args.parameters ?? {};
      if (typeof parameters !== 'object' || Array.isArray(parameters)) throw badInput('parameters must be a JSON object.');
      // A preview plans the spec with its defaults and answers with keys hashed from them: the spec's reader only.
      const workflow = await workflowDomainRef(ctx.services.db, args.workflow, args.version ?? undefined);
      if (workflow) await assertMayReadSpec(ctx.services.db, ctx.ability, ctx.identity, workflow, 'preview runs');
      return previewRun(
        ctx.services,
        {
          workflow: args.workflow,
          version: args.version ?? undefined,
          parameters: parameters as Record<string, unknown>,
          domain: args.domain ?? undefined,
          cacheNamespace: args.cacheNamespace ?? undefined,
        },
        readerOf(ctx),
      );
    },
  }),
  cacheStats: t.field({
    type: [CacheStatsRef],
    description: 'Hits, misses, hit rate and hours saved since a time, by team, workflow or module, over the runs of domains whose data you may read.',
    args: { since: t.arg({ type: 'DateTime', required: true }), groupBy: t.arg({ type: CacheGroupingEnum, defaultValue: 'module' }) },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Run', 'read cache statistics');
      return cacheStats(ctx.services.db, args.since, args.groupBy ?? 'module', readerOf(ctx).domains);
    },
  }),
  cacheSavingsOverTime: t.field({
    type: [SavingsBucketRef],
    description: `Hits, misses and hours saved in each bucket between consecutive boundaries (increasing; at most ${MAX_BUCKETS} buckets), over the runs of domains whose data you may read: a chart's series in one read.`,
    args: { boundaries: t.arg({ type: ['DateTime'], required: true }) },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Run', 'read cache statistics');
      return cacheSavingsOverTime(ctx.services.db, args.boundaries, readerOf(ctx).domains);
    },
  }),
}));

builder.mutationFields((t) => ({
  invalidateCache: t.int({
    description:
      'Drops cache entries: every entry of a module (`ns/name`), of one of its versions (`ns/name@version`), or one entry by key. Returns how many. Only the module namespace’s team and admins; by key, only entries you may read.',
    args: { module: t.arg.string(), key: t.arg.string() },
    resolve: (_root, args, ctx) =>
      invalidateCache(ctx.services.db, ctx.services.cache, ctx.ability, readerOf(ctx), { module: args.module ?? undefined, key: args.key ?? undefined }),
  }),
}));
