// Data freshness on datasets: how often a new version is expected, whether it is late, and what runs reading it do
// meanwhile. The work is in server/governance/freshness.ts.
import { freshnessPolicies } from '../../server/db/tables/dataset-health';
import { type Freshness, freshnessOf, setDatasetFreshness } from '../../server/governance/freshness';
import { builder } from '../builder';
import { DatasetRef } from './datasets';

const FreshnessPolicyEnum = builder.enumType('FreshnessPolicy', {
  values: freshnessPolicies,
  description: 'What a run’s task reading a late dataset does: WAIT for a fresh version (up to maxWait, then fail), FAIL at once, or IGNORE.',
});

const FreshnessRef = builder.objectRef<Freshness>('DatasetFreshness').implement({
  description: 'A dataset’s freshness: a new version is expected every `expectedEvery` after the last one.',
  fields: (t) => ({
    expectedEvery: t.exposeString('expectedEvery', { description: 'e.g. 6h, 1d.' }),
    policy: t.field({ type: FreshnessPolicyEnum, resolve: (f) => f.policy }),
    maxWait: t.exposeString('maxWait', { description: 'With WAIT: how long a task waits for a fresh version before failing.' }),
    lastVersionAt: t.expose('lastVersionAt', { type: 'DateTime' }),
    dueAt: t.expose('dueAt', { type: 'DateTime', description: 'When the next version is due.' }),
    late: t.exposeBoolean('late'),
    lateSince: t.expose('lateSince', { type: 'DateTime', nullable: true }),
  }),
});

builder.objectField(DatasetRef, 'freshness', (t) =>
  t.field({
    type: FreshnessRef,
    nullable: true,
    description: 'How often a new version is expected and whether one is late; null when the dataset declares nothing.',
    resolve: async (d, _a, ctx) => (await freshnessOf(ctx.services.db, [d.id])).get(d.id) ?? null,
  }),
);

builder.mutationField('setDatasetFreshness', (t) =>
  t.field({
    type: DatasetRef,
    description:
      'Declares how often a dataset expects a new version (`expectedEvery`, e.g. 6h or 1d; null removes it) and what runs reading it do while it is late. A late dataset sends `dataset.late` (and `dataset.fresh` once a version arrives) to its team’s webhooks. By a member of the team owning its namespace.',
    args: {
      dataset: t.arg.string({ required: true }),
      expectedEvery: t.arg.string({ description: 'An interval from 1m to 366d (units s, m, h, d, w); null: no expectation.' }),
      policy: t.arg({ type: FreshnessPolicyEnum, defaultValue: 'IGNORE' }),
      maxWait: t.arg.string({ description: 'With WAIT: how long a task waits before it fails (default 1h).' }),
    },
    resolve: (_r, args, ctx) =>
      setDatasetFreshness(ctx.services.db, ctx.ability, ctx.identity, {
        dataset: args.dataset,
        expectedEvery: args.expectedEvery ?? null,
        policy: args.policy ?? 'IGNORE',
        maxWait: args.maxWait ?? undefined,
      }),
  }),
);
