// Dataset profiles and drift between two versions: each column only where the caller may preview it (absent
// otherwise, like a column without a profile). The work is in server/governance/profiles.ts and
// server/monitoring/drift.ts.

import { markRecorded } from '../../server/audit/audit';
import { assertCan } from '../../server/auth/ability';
import { badInput, forbidden, notFound } from '../../server/errors';
import type { ColumnProfile, ReadableProfile } from '../../server/governance/profiles';
import { readProfile } from '../../server/governance/profiles';
import { type ColumnDriftResult, type DatasetDrift, driftOf, trainingVersionOf } from '../../server/monitoring/drift';
import { mayReadField, mayReadObject } from '../auth';
import { builder } from '../builder';

const ColumnProfileRef = builder.objectRef<{ column: string; profile: ColumnProfile }>('DatasetColumnProfile').implement({
  description: 'One column’s profile of a dataset version (docs/drift.md).',
  fields: (t) => ({
    column: t.exposeString('column'),
    kind: t.string({ description: 'numeric or categorical.', resolve: (c) => c.profile.kind }),
    count: t.int({ description: 'Values (numeric: finite ones).', resolve: (c) => c.profile.count }),
    nulls: t.int({ resolve: (c) => c.profile.nulls }),
    summary: t.field({
      type: 'JSON',
      description: 'The whole profile: numeric {min, max, histogram {edges, counts}, values}, categorical {top, other}.',
      resolve: (c) => c.profile,
    }),
  }),
});

const ProfileRef = builder.objectRef<ReadableProfile>('DatasetProfile').implement({
  description: 'A dataset version’s profile: only the columns you may preview that have one.',
  fields: (t) => ({
    dataset: t.exposeString('dataset'),
    version: t.exposeInt('version'),
    columns: t.field({ type: [ColumnProfileRef], resolve: (p) => p.columns }),
  }),
});

const ColumnDriftRef = builder.objectRef<ColumnDriftResult>('ColumnDrift').implement({
  description: 'Drift of one column between a baseline version and a current one. Statistics that do not apply are null.',
  fields: (t) => ({
    column: t.exposeString('column'),
    kind: t.string({ description: 'numeric, categorical, or none (then `reason` says why).', resolve: (c) => c.drift.kind }),
    reason: t.string({ nullable: true, resolve: (c) => (c.drift.kind === 'none' ? c.drift.reason : null) }),
    psi: t.float({ nullable: true, resolve: (c) => (c.drift.kind === 'numeric' ? c.drift.psi : null) }),
    ksStatistic: t.float({ nullable: true, resolve: (c) => (c.drift.kind === 'numeric' ? c.drift.ks.statistic : null) }),
    ksPValue: t.float({ nullable: true, description: 'Asymptotic.', resolve: (c) => (c.drift.kind === 'numeric' ? c.drift.ks.pValue : null) }),
    chiSquare: t.float({ nullable: true, resolve: (c) => (c.drift.kind === 'categorical' ? c.drift.chiSquare.statistic : null) }),
    chiSquarePValue: t.float({ nullable: true, resolve: (c) => (c.drift.kind === 'categorical' ? c.drift.chiSquare.pValue : null) }),
    chiSquareDof: t.int({ nullable: true, resolve: (c) => (c.drift.kind === 'categorical' ? c.drift.chiSquare.dof : null) }),
    jensenShannon: t.float({ nullable: true, resolve: (c) => (c.drift.kind === 'categorical' ? c.drift.jensenShannon : null) }),
    exact: t.boolean({
      nullable: true,
      description: 'Whether the statistics are exact (both sides list exact values, or no `other` bucket).',
      resolve: (c) => (c.drift.kind === 'numeric' ? c.drift.ks.exact : c.drift.kind === 'categorical' ? c.drift.exact : null),
    }),
    breaches: t.exposeStringList('breaches', { description: 'The thresholds crossed, in words.' }),
    breached: t.boolean({ resolve: (c) => c.breaches.length > 0 }),
  }),
});

const DriftRef = builder.objectRef<DatasetDrift>('DatasetDrift').implement({
  fields: (t) => ({
    dataset: t.exposeString('dataset'),
    version: t.exposeInt('version'),
    baselineVersion: t.exposeInt('baselineVersion'),
    columns: t.field({ type: [ColumnDriftRef], description: 'Columns both versions profile and you may preview.', resolve: (d) => d.columns }),
    breached: t.boolean({ resolve: (d) => d.columns.some((c) => c.breaches.length > 0) }),
  }),
});

const ThresholdsInput = builder.inputType('DriftThresholdsInput', {
  fields: (t) => ({
    psi: t.float({ description: 'Breach when PSI is above (default 0.2).' }),
    ks: t.float({ description: 'Breach when the KS statistic is above (no default).' }),
    chiSquarePValue: t.float({ description: 'Breach when the chi-square p-value is below (no default).' }),
    jensenShannon: t.float({ description: 'Breach when the Jensen–Shannon distance is above (default 0.1).' }),
  }),
});

/** The answer findModelVersion gives for a version that does not exist (server/registry/models.ts), word for word. */
function noSuchVersion(ref: string) {
  const at = ref.indexOf('@');
  const full = at < 0 ? ref : ref.slice(0, at);
  return notFound(`${full} has no version or alias "${at < 0 ? 'latest' : ref.slice(at + 1)}"; see them with \`npx atelier model show ${full}\`.`);
}

builder.queryFields((t) => ({
  datasetProfile: t.field({
    type: ProfileRef,
    description: 'The profile of a dataset version, per column you may preview.',
    args: { name: t.arg.string({ required: true }), version: t.arg.int({ required: true }) },
    resolve: (_r, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Dataset', 'read dataset profiles');
      return readProfile(ctx.services.db, { identity: ctx.identity, grants: ctx.grants }, args.name, args.version);
    },
  }),
  datasetDrift: t.field({
    type: DriftRef,
    description:
      'Drift of a dataset version against a baseline version, per column you may preview, computed from their stored profiles. Give `baseline`, or `modelVersion` (namespace/name@N) to compare with the version of this dataset its lineage says it was trained on.',
    args: {
      name: t.arg.string({ required: true }),
      version: t.arg.int({ required: true }),
      baseline: t.arg.int(),
      modelVersion: t.arg.string(),
      columns: t.arg.stringList(),
      thresholds: t.arg({ type: ThresholdsInput }),
    },
    resolve: async (_r, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Dataset', 'read dataset drift');
      let baseline = args.baseline ?? null;
      if (baseline === null && args.modelVersion) {
        const { modelVersion, baselineVersion } = await trainingVersionOf(ctx.services.db, args.modelVersion, args.name);
        // A model version the caller may not read answers like one that does not exist.
        if (!(await mayReadObject(ctx, 'ModelVersion', modelVersion))) throw noSuchVersion(args.modelVersion);
        // The training version is lineage, run data: only for callers who may read the version's lineage (the
        // field's refusal is audited by mayReadField).
        if (!(await mayReadField(ctx, 'ModelVersion', modelVersion, 'lineage'))) {
          const refused = forbidden(`${args.modelVersion}'s lineage is run data you may not read, so it cannot name the baseline; give \`baseline\` instead.`);
          markRecorded(refused);
          throw refused;
        }
        if (baselineVersion === null) throw notFound(`${args.modelVersion} read no version of ${args.name}; give \`baseline\` instead.`);
        baseline = baselineVersion;
      }
      if (baseline === null) throw badInput('Give `baseline` (a version number) or `modelVersion` (namespace/name@N) to compare against.');
      const th = args.thresholds;
      return driftOf(
        ctx.services.db,
        { identity: ctx.identity, grants: ctx.grants },
        {
          dataset: args.name,
          version: args.version,
          baselineVersion: baseline,
          columns: args.columns ?? undefined,
          thresholds: th
            ? {
                psi: th.psi ?? undefined,
                ks: th.ks ?? undefined,
                chiSquarePValue: th.chiSquarePValue ?? undefined,
                jensenShannon: th.jensenShannon ?? undefined,
              }
            : undefined,
        },
      );
    },
  }),
}));
