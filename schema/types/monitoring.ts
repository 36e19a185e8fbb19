// Metric streams: observations about a model version, an alias, a dataset or a workflow, written in batches, and
// their series per dimension group and time bucket. The work is in server/monitoring/ (docs/monitoring.md).
import { targetKinds } from '../../server/db/tables/monitoring';
import { recordObservations } from '../../server/monitoring/observations';
import { metricSeries, type SeriesGroup, type SeriesPoint } from '../../server/monitoring/series';
import { builder } from '../builder';

export const TargetKindEnum = builder.enumType('MonitorTargetKind', {
  values: targetKinds,
  description:
    'What observations and monitors are about: a model version (ns/model@3), an alias (ns/model@champion, followed as it moves), a dataset (ns/name) or a workflow (its name).',
});

export const TargetInput = builder.inputType('MonitorTargetInput', {
  fields: (t) => ({
    kind: t.field({ type: TargetKindEnum, required: true }),
    ref: t.string({ required: true, description: 'ns/model@3, ns/model@champion, ns/dataset or a workflow name.' }),
  }),
});

export const MonitorTargetRef = builder.objectRef<{ kind: (typeof targetKinds)[number]; ref: string }>('MonitorTarget').implement({
  fields: (t) => ({ kind: t.field({ type: TargetKindEnum, resolve: (x) => x.kind }), ref: t.exposeString('ref') }),
});

const ObservationInput = builder.inputType('ObservationInput', {
  fields: (t) => ({
    target: t.field({ type: TargetInput, required: true }),
    metric: t.string({ required: true }),
    value: t.float({ required: true, description: 'Finite; NaN and ±Infinity are refused.' }),
    at: t.field({ type: 'DateTime', description: 'Default: now. At most 5 minutes ahead of the server, at most a year old.' }),
    dimensions: t.field({ type: 'JSON', description: 'At most 16 names (64 characters) to strings, numbers or booleans (256 characters).' }),
  }),
});

const RecordedRef = builder.objectRef<{ recorded: number }>('RecordedObservations').implement({
  fields: (t) => ({ recorded: t.exposeInt('recorded') }),
});

const BucketRef = builder.objectRef<SeriesPoint>('ObservationBucket').implement({
  description: 'The observations of one group in one time bucket.',
  fields: (t) => ({
    at: t.expose('at', { type: 'DateTime', description: 'The bucket’s start.' }),
    count: t.exposeInt('count'),
    mean: t.exposeFloat('mean'),
    min: t.exposeFloat('min'),
    max: t.exposeFloat('max'),
    last: t.exposeFloat('last'),
  }),
});

const GroupRef = builder.objectRef<SeriesGroup>('ObservationGroup').implement({
  fields: (t) => ({
    key: t.field({ type: 'JSON', description: 'The grouped dimensions’ values (null: none).', resolve: (g) => g.key }),
    buckets: t.field({ type: [BucketRef], resolve: (g) => g.points }),
  }),
});

builder.mutationFields((t) => ({
  recordObservations: t.field({
    type: RecordedRef,
    description:
      'Records up to 10,000 observations at once (the target’s owning team and admins). The whole batch is checked first; a bad one refuses it all, naming its index.',
    args: { observations: t.arg({ type: [ObservationInput], required: true }) },
    resolve: (_r, args, ctx) =>
      recordObservations(
        ctx.services.db,
        ctx,
        args.observations.map((o) => ({ ...o, dimensions: o.dimensions as Record<string, unknown> | null })),
      ),
  }),
}));

builder.queryFields((t) => ({
  metricSeries: t.field({
    type: [GroupRef],
    description:
      'A metric of a target per dimension group and time bucket (at most 100 groups). A dimension named like a column you may not preview is answered as one nobody sent.',
    args: {
      target: t.arg({ type: TargetInput, required: true }),
      metric: t.arg.string({ required: true }),
      groupBy: t.arg.stringList(),
      since: t.arg({ type: 'DateTime' }),
      until: t.arg({ type: 'DateTime' }),
      bucketSeconds: t.arg.int(),
    },
    resolve: (_r, args, ctx) => metricSeries(ctx.services.db, ctx, args),
  }),
}));
