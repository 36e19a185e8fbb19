// Searching runs with the filter language (server/tracking/filter.ts) and comparing them side by side. Both read
// only runs whose run data the caller may read (server/tracking/access.ts); the work is in server/tracking/.
import { type ResolveCursorConnectionArgs, resolveCursorConnection } from '@pothos/plugin-relay';
import { assertCan } from '../../server/auth/ability';
import { badInput } from '../../server/errors';
import { runDataDomains } from '../../server/tracking/access';
import { type Comparison, compareRuns, DEFAULT_MAX_POINTS, MAX_COMPARED_RUNS, MAX_POINTS, type MetricCell } from '../../server/tracking/compare';
import { type FoundRun, searchRuns } from '../../server/tracking/search';
import { builder } from '../builder';
import { checkId } from '../ids';
import { RunRef } from './runs';

builder.queryFields((t) => ({
  searchRuns: t.connection({
    type: RunRef,
    description:
      'Runs whose run data you may read, matching `filter` (e.g. `metrics.accuracy > 0.95 and params.lr <= 0.1 and tags.dataset = \'v2\'`; see the README), ordered by `orderBy` (e.g. `["metrics.accuracy DESC"]`; default newest first). A metric, param or tag that no run you may read has is refused (UNKNOWN_METRIC, UNKNOWN_PARAM, UNKNOWN_TAG, naming the nearest names they have), not matched against nothing.',
    args: {
      filter: t.arg.string({ description: 'The filter; empty or absent: every run.' }),
      orderBy: t.arg.stringList({ description: 'Up to 5 keys, each a field then ASC (default) or DESC; runs without the value come last.' }),
    },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Run', 'search runs');
      const readable = runDataDomains(ctx.ability);
      return resolveCursorConnection(
        { args, toCursor: (run: FoundRun) => run.searchCursor },
        ({ before, after, limit, inverted }: ResolveCursorConnectionArgs) =>
          searchRuns(ctx.services.db, readable, args.filter ?? '', args.orderBy ?? [], {
            after: after ?? undefined,
            before: before ?? undefined,
            limit,
            inverted,
          }),
      );
    },
  }),
}));

const MetricCellRef = builder.objectRef<MetricCell>('RunMetricSummary').implement({
  description:
    'A metric of one run over its tasks: the last value reported most recently, the least minimum and the greatest maximum (NaN is never a min or max).',
  fields: (t) => ({
    last: t.field({ type: 'MetricValue', resolve: (c) => c.last }),
    lastStep: t.float({ resolve: (c) => c.lastStep }),
    min: t.field({ type: 'MetricValue', nullable: true, resolve: (c) => c.min }),
    minStep: t.float({ nullable: true, resolve: (c) => c.minStep }),
    max: t.field({ type: 'MetricValue', nullable: true, resolve: (c) => c.max }),
    maxStep: t.float({ nullable: true, resolve: (c) => c.maxStep }),
    count: t.float({ description: 'Points reported (all attempts).', resolve: (c) => c.count }),
  }),
});

const ParamRowRef = builder.objectRef<Comparison['params'][number]>('ComparedParam').implement({
  description: 'One parameter across the compared runs.',
  fields: (t) => ({
    key: t.exposeString('key'),
    values: t.stringList({
      nullable: { list: false, items: true },
      description: 'Per run, in the order of `runs` (as text; null: the run has none).',
      resolve: (p) => p.values,
    }),
    differs: t.exposeBoolean('differs'),
  }),
});

const MetricRowRef = builder.objectRef<Comparison['metrics'][number]>('ComparedMetric').implement({
  description: 'One metric across the compared runs.',
  fields: (t) => ({
    name: t.exposeString('name'),
    values: t.field({
      type: [MetricCellRef],
      nullable: { list: false, items: true },
      description: 'Per run, in the order of `runs` (null: never reported).',
      resolve: (m) => m.values,
    }),
  }),
});

const PointRef = builder.objectRef<{ step: number; value: number }>('MetricSeriesPoint').implement({
  fields: (t) => ({ step: t.float({ resolve: (p) => p.step }), value: t.field({ type: 'MetricValue', resolve: (p) => p.value }) }),
});

const SeriesRef = builder.objectRef<Comparison['series'][number]>('ComparedSeries').implement({
  description:
    'A run’s series of a metric, downsampled to at most maxPoints: each step bucket (the same buckets for every run) keeps its lowest and highest point.',
  fields: (t) => ({
    runId: t.exposeID('runId'),
    metric: t.exposeString('metric'),
    points: t.field({ type: [PointRef], resolve: (s) => s.steps.map((step, i) => ({ step, value: s.values[i]! })) }),
    steps: t.floatList({
      description: 'The points’ steps, in order: with `values`, the columnar form of `points` (several times cheaper to send for many runs).',
      resolve: (s) => s.steps,
    }),
    values: t.field({ type: ['MetricValue'], description: 'The points’ values, in the order of `steps`.', resolve: (s) => s.values }),
  }),
});

const ComparisonRef = builder.objectRef<Comparison>('RunComparison').implement({
  description: 'Runs side by side.',
  fields: (t) => ({
    runs: t.field({ type: [RunRef], description: 'The runs compared, in the order asked.', resolve: (c) => c.runs }),
    missing: t.idList({
      description: 'Ids that name no run you may read (unknown, deleted, or in a domain your teams are not granted).',
      resolve: (c) => c.missing,
    }),
    params: t.field({ type: [ParamRowRef], resolve: (c) => c.params }),
    metrics: t.field({ type: [MetricRowRef], resolve: (c) => c.metrics }),
    series: t.field({ type: [SeriesRef], resolve: (c) => c.series }),
  }),
});

builder.queryFields((t) => ({
  compareRuns: t.field({
    type: ComparisonRef,
    description: `Up to ${MAX_COMPARED_RUNS} runs whose run data you may read, side by side: params that differ (all with allParams), metric summaries, and series for overlay.`,
    args: {
      ids: t.arg.idList({ required: true }),
      metrics: t.arg.stringList({ description: 'Metrics to compare; default: every metric of these runs.' }),
      maxPoints: t.arg.int({ description: `Points per series at most (2 to ${MAX_POINTS}); default ${DEFAULT_MAX_POINTS}.` }),
      allParams: t.arg.boolean({ description: 'Every param, not only those that differ.' }),
    },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Run', 'compare runs');
      const ids = args.ids.map(String);
      if (ids.length > MAX_COMPARED_RUNS) throw badInput(`compareRuns takes at most ${MAX_COMPARED_RUNS} runs; got ${ids.length}.`);
      for (const id of ids) checkId(id, 'run');
      return compareRuns(ctx.services.db, runDataDomains(ctx.ability), { ids, metrics: args.metrics, maxPoints: args.maxPoints, allParams: args.allParams });
    },
  }),
}));
