// Stored metrics on the API: Task.metricHistory (one series, downsampled on the server) and Run.metrics (each
// task's summary of each metric). Both are run data (server/auth/fields.ts). GraphQL's Float has no NaN or
// ±Infinity, so a value is `value` (null when not finite) beside `special` ("NaN", "Infinity", "-Infinity").
import { encodeMetricValue } from '../../plugins/metric-values';
import { type HistoryPoint, type MetricHistory, metricHistory, runMetricsOf, type TaskMetricSummary } from '../../server/tracking/queries';
import { builder } from '../builder';
import { RunRef } from './runs';
import { TaskRef } from './tasks';

const finite = (v: number | null) => (v !== null && Number.isFinite(v) ? v : null);
const special = (v: number | null) => (v === null || Number.isFinite(v) ? null : (encodeMetricValue(v) as string));
const specialDoc = 'Set when the value is no finite number: "NaN", "Infinity" or "-Infinity" (then the Float is null).';

const MetricPointRef = builder.objectRef<HistoryPoint>('MetricPoint').implement({
  description: 'One stored point of a metric: its step (as reported; any order) and value.',
  fields: (t) => ({
    seq: t.float({ description: 'Its place in the attempt’s report order (what the series is ordered by).', resolve: (p) => p.seq }),
    step: t.float({ resolve: (p) => p.step }),
    value: t.float({ nullable: true, description: 'The value; null when it is NaN or ±Infinity (see `special`).', resolve: (p) => finite(p.value) }),
    special: t.string({ nullable: true, description: specialDoc, resolve: (p) => special(p.value) }),
  }),
});

const MetricHistoryRef = builder.objectRef<MetricHistory>('MetricHistory').implement({
  description:
    'One metric of a task, in report order, downsampled on the server: equal buckets of points each keep their lowest and highest value, plus the first and last point.',
  fields: (t) => ({
    name: t.exposeString('name'),
    attempt: t.exposeInt('attempt', { nullable: true, description: 'The attempt the points come from; null when no attempt reported this metric.' }),
    fromCache: t.exposeBoolean('fromCache', { description: 'The task was served from cache or reused by a rerun: these are the points of the task that ran.' }),
    sourceTaskId: t.exposeID('sourceTaskId', { nullable: true }),
    total: t.float({ description: 'How many points the series holds.', resolve: (h) => h.total }),
    points: t.field({ type: [MetricPointRef], resolve: (h) => h.points }),
  }),
});

const TaskMetricSummaryRef = builder.objectRef<TaskMetricSummary>('TaskMetricSummary').implement({
  description: 'One metric of one task of a run: its last value, its lowest and highest (NaN is never either) and where they were.',
  fields: (t) => ({
    taskId: t.exposeID('taskId'),
    node: t.exposeString('node'),
    name: t.exposeString('name'),
    count: t.float({ description: 'Points stored (all attempts).', resolve: (s) => s.count }),
    last: t.float({ nullable: true, resolve: (s) => finite(s.last) }),
    lastSpecial: t.string({ nullable: true, description: specialDoc, resolve: (s) => special(s.last) }),
    lastStep: t.float({ resolve: (s) => s.lastStep }),
    min: t.float({ nullable: true, resolve: (s) => finite(s.min) }),
    minSpecial: t.string({ nullable: true, description: specialDoc, resolve: (s) => special(s.min) }),
    minStep: t.float({ nullable: true, resolve: (s) => s.minStep }),
    max: t.float({ nullable: true, resolve: (s) => finite(s.max) }),
    maxSpecial: t.string({ nullable: true, description: specialDoc, resolve: (s) => special(s.max) }),
    maxStep: t.float({ nullable: true, resolve: (s) => s.maxStep }),
    fromCache: t.exposeBoolean('fromCache', { description: 'The task was served from cache or reused by a rerun: the summary is the task’s that ran.' }),
    sourceTaskId: t.exposeID('sourceTaskId', { nullable: true }),
  }),
});

builder.objectField(TaskRef, 'metricHistory', (t) =>
  t.field({
    type: MetricHistoryRef,
    nullable: true,
    description:
      'Every point of one metric, downsampled on the server to at most `maxPoints` (2 to 10,000) keeping the extremes. `attempt` defaults to the latest attempt that reported the metric. Null (with a FORBIDDEN error) unless your teams are granted the run’s domain.',
    args: { name: t.arg.string({ required: true }), maxPoints: t.arg.int({ defaultValue: 1000 }), attempt: t.arg.int() },
    resolve: (task, args, ctx) => metricHistory(ctx.services.db, task.id, args.name, args.maxPoints ?? 1000, args.attempt),
  }),
);

builder.objectField(RunRef, 'metrics', (t) =>
  t.field({
    type: [TaskMetricSummaryRef],
    nullable: true,
    description:
      'Each task’s summary of each metric it reported, by node then name. Null (with a FORBIDDEN error) unless your teams are granted the run’s domain.',
    resolve: (run, _args, ctx) => runMetricsOf(ctx.services.db, run.id),
  }),
);
