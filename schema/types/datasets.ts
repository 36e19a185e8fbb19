// Datasets with their columns and classification labels (UNCLASSIFIED flagged), declassification requests,
// and the audit log for admins.
import { assertCan } from '../../server/auth/ability';
import type { AuditEvent, DatasetVersion, Declassification } from '../../server/db/tables/governance';
import { addDatasetVersion, type ColumnView, createDataset, datasetColumns, datasetWithName, setColumnLabel } from '../../server/governance/datasets';
import { decideDeclassification, requestDeclassification } from '../../server/governance/declassification';
import { type Preview, previewDataset } from '../../server/governance/preview';
import { datasetsByIds, datasetVersionsOf, listAuditEvents, listDatasets, listDeclassifications } from '../../server/governance/queries';
import { taskById } from '../../server/runs/queries';
import type { DatasetPartition, Label, Level } from '../../server/vocabulary';
import { guard } from '../auth';
import { builder } from '../builder';
import type { Context } from '../context';
import { NodeRef } from '../node';
import { DomainEnum, LevelEnum } from './enums';
import { IdentityRef } from './identity';
import { TaskRef } from './tasks';

export const LabelRef = builder.objectRef<Label>('ClassificationLabel').implement({
  description: 'A level and categories. `UNCLASSIFIED` (no label yet) ranks above every level for enforcement.',
  fields: (t) => ({
    level: t.exposeString('level', { description: 'A ClassificationLevel, or UNCLASSIFIED.' }),
    categories: t.exposeStringList('categories'),
  }),
});

const ColumnRef = builder.objectRef<ColumnView>('DatasetColumn').implement({
  fields: (t) => ({
    name: t.exposeString('name'),
    type: t.exposeString('type'),
    label: t.field({ type: LabelRef, resolve: (c) => c.label }),
    computedLabel: t.field({
      type: LabelRef,
      nullable: true,
      description: 'What lineage propagation derived; the label is never below it.',
      resolve: (c) => c.computed,
    }),
    needsClassification: t.boolean({ resolve: (c) => c.label.level === 'UNCLASSIFIED' }),
  }),
});

const VersionColumnRef = builder.objectRef<{ name: string; type: string }>('DatasetVersionColumn').implement({
  description: 'A column as one version of a dataset declared it (its label is the dataset’s, on `Dataset.columns`).',
  fields: (t) => ({ name: t.exposeString('name'), type: t.exposeString('type') }),
});

const DatasetPartitionRef = builder.objectRef<DatasetPartition>('DatasetPartition').implement({
  description: 'One named part of a dataset version (a file or prefix of its data).',
  fields: (t) => ({
    name: t.exposeString('name'),
    digest: t.exposeString('digest'),
    rows: t.int({ nullable: true, resolve: (p) => p.rows ?? null }),
  }),
});

export const DatasetVersionRef = builder.objectRef<DatasetVersion>('DatasetVersion').implement({
  fields: (t) => ({
    version: t.exposeInt('version'),
    digest: t.exposeString('digest'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    columns: t.field({ type: [VersionColumnRef], description: 'The columns this version has.', resolve: (v) => v.columns }),
    partitions: t.field({
      type: [DatasetPartitionRef],
      description: 'Its named partitions, what batch workflows map over; none: the version is one whole.',
      resolve: (v) => v.partitions,
    }),
    producedBy: t.field({
      type: TaskRef,
      nullable: true,
      description: 'The task that wrote this version, when a run did (its run, inputs and module are on the task).',
      resolve: (v, _a, ctx) => (v.producedByTaskId ? taskById(ctx.services.db, v.producedByTaskId) : null),
    }),
  }),
});

/** A dataset by id, loaded once per request however many fields name it (a missing one is null). */
export const DatasetRef = builder.loadableObjectRef('Dataset', {
  load: (ids: string[], ctx: Context) => datasetsByIds(ctx.services.db, ids),
  sort: (d) => d.id,
});

DatasetRef.implement({
  authScopes: guard('Dataset', 'Dataset'),
  interfaces: [NodeRef],
  description: 'A versioned dataset owned by a domain, with a classification label per column.',
  fields: (t) => ({
    id: t.exposeID('id'),
    namespace: t.exposeString('namespace'),
    name: t.exposeString('name'),
    fullName: t.string({ resolve: (d) => `${d.namespace}/${d.name}` }),
    domain: t.field({ type: DomainEnum, resolve: (d) => d.domain }),
    description: t.exposeString('description'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    versions: t.field({
      type: [DatasetVersionRef],
      resolve: (d, _a, ctx) => datasetVersionsOf(ctx.services.db, d.id),
    }),
    columns: t.field({
      type: [ColumnRef],
      description: 'The latest version’s columns with their labels.',
      resolve: (d, _a, ctx) => datasetColumns(ctx.services.db, d.id),
    }),
  }),
});

export const DeclassificationRef = builder.objectRef<Declassification>('Declassification').implement({
  authScopes: guard('Declassification', 'Declassification'),
  interfaces: [NodeRef],
  fields: (t) => ({
    id: t.exposeID('id'),
    dataset: t.string({
      description: 'The dataset, namespace/name.',
      resolve: async (r, _a, ctx) => {
        const d = await DatasetRef.getDataloader(ctx).load(r.datasetId);
        return d ? `${d.namespace}/${d.name}` : '';
      },
    }),
    column: t.exposeString('column'),
    from: t.field({ type: LabelRef, resolve: (r) => ({ level: r.fromLevel as Label['level'], categories: r.fromCategories }) }),
    to: t.field({ type: LabelRef, resolve: (r) => ({ level: r.toLevel as Label['level'], categories: r.toCategories }) }),
    reason: t.exposeString('reason'),
    state: t.exposeString('state'),
    requestedBy: t.field({ type: IdentityRef, resolve: (r) => r.requestedBy }),
    decidedBy: t.field({ type: IdentityRef, nullable: true, resolve: (r) => r.decidedBy }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const AuditEventRef = builder.objectRef<AuditEvent>('AuditEvent').implement({
  authScopes: guard('AuditEvent', 'AuditEvent'),
  interfaces: [NodeRef],
  description: 'One decision on data or one change to grants, labels or memberships.',
  fields: (t) => ({
    id: t.exposeID('id'),
    at: t.expose('at', { type: 'DateTime' }),
    identity: t.field({ type: IdentityRef, nullable: true, resolve: (e) => e.identityId }),
    action: t.exposeString('action'),
    decision: t.exposeString('decision'),
    subject: t.exposeString('subject'),
    rule: t.exposeString('rule'),
    details: t.expose('details', { type: 'JSON' }),
  }),
});

const LabelInput = builder.inputType('ClassificationLabelInput', {
  fields: (t) => ({ level: t.field({ type: LevelEnum, required: true }), categories: t.stringList() }),
});
const ColumnInput = builder.inputType('DatasetColumnInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    type: t.string({ required: true }),
    label: t.field({ type: LabelInput, description: 'Left out: the column stays UNCLASSIFIED.' }),
  }),
});

const PartitionInput = builder.inputType('DatasetPartitionInput', {
  fields: (t) => ({
    name: t.string({ required: true, description: 'A file or prefix of the version’s data, e.g. `day=2026-01-01`.' }),
    digest: t.string({ required: true, description: 'Content digest of the partition’s data, sha256:<hex>.' }),
    rows: t.int(),
  }),
});

const partitionsArg =
  'Its named partitions (files or prefixes of the data): a batch workflow maps one task over each (`map: { over: { partitionsOf: "ns/name" } }`).';

const profileArg =
  'Per column, the version’s profile (docs/drift.md: numeric {count, nulls, min, max, histogram, values} or categorical {count, nulls, top, other}); checked, a bad one refuses the version. Left out: computed from `sample`.';

const labelIn = (l: { level: Level; categories?: string[] | null }) => ({ level: l.level, categories: l.categories ?? [] });

builder.queryFields((t) => ({
  datasets: t.field({
    type: [DatasetRef],
    args: {
      domain: t.arg({ type: DomainEnum }),
      catalog: t.arg.boolean({ description: 'Only datasets published to the interactive catalog (true) or not (false).' }),
    },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Dataset', 'list datasets');
      return listDatasets(ctx.services.db, { domain: args.domain, catalog: args.catalog });
    },
  }),
  declassifications: t.field({
    type: [DeclassificationRef],
    description: 'Declassification requests waiting for a decision (or all, with `pending: false`).',
    args: { pending: t.arg.boolean({ defaultValue: true }) },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Dataset', 'list declassifications');
      return listDeclassifications(ctx.services.db, args.pending !== false);
    },
  }),
  auditEvents: t.field({
    type: [AuditEventRef],
    description: 'The audit log, newest first. Admins only.',
    args: {
      subject: t.arg.string({ description: 'Only this subject, e.g. `dataset:crm/users.email`.' }),
      since: t.arg({ type: 'DateTime' }),
      limit: t.arg.int({ defaultValue: 100 }),
    },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'AuditEvent', 'read the audit log');
      return listAuditEvents(ctx.services.db, { subject: args.subject, since: args.since, limit: Math.min(Math.max(args.limit ?? 100, 1), 1000) });
    },
  }),
}));

builder.mutationFields((t) => ({
  createDataset: t.field({
    type: DatasetRef,
    description: 'Registers a dataset (namespace/name, in a namespace your team owns) with its first version’s columns.',
    args: {
      name: t.arg.string({ required: true }),
      domain: t.arg({ type: DomainEnum, required: true }),
      description: t.arg.string(),
      columns: t.arg({ type: [ColumnInput], required: true }),
      digest: t.arg.string({ required: true, description: 'Content digest of the data, sha256:<hex>.' }),
      sample: t.arg({
        type: 'JSON',
        description: 'Up to 1,000 rows (objects keyed by column) shown by datasetPreview, each column only to those cleared to read it.',
      }),
      profile: t.arg({ type: 'JSON', description: profileArg }),
      partitions: t.arg({ type: [PartitionInput], description: partitionsArg }),
    },
    resolve: (_root, args, ctx) =>
      createDataset(ctx.services.db, ctx.ability, ctx.identity, {
        name: args.name,
        domain: args.domain,
        description: args.description ?? undefined,
        digest: args.digest,
        sample: args.sample as Record<string, unknown>[] | undefined,
        profile: args.profile ?? undefined,
        partitions: args.partitions?.map((p) => ({ name: p.name, digest: p.digest, rows: p.rows ?? undefined })),
        columns: args.columns.map((c) => ({ name: c.name, type: c.type, label: c.label ? labelIn(c.label) : undefined })),
      }),
  }),
  addDatasetVersion: t.field({
    type: DatasetRef,
    description:
      'Records a new version (a new snapshot) of a dataset, in a namespace your team owns. Kept columns keep their labels; a label here classifies a column that has none; new columns without one are UNCLASSIFIED (and take the dataset out of the catalog). The same digest and columns as the latest version record nothing.',
    args: {
      name: t.arg.string({ required: true }),
      columns: t.arg({ type: [ColumnInput], required: true }),
      digest: t.arg.string({ required: true, description: 'Content digest of the data, sha256:<hex>.' }),
      sample: t.arg({ type: 'JSON', description: 'Up to 1,000 rows (objects keyed by column) for datasetPreview.' }),
      profile: t.arg({ type: 'JSON', description: profileArg }),
      partitions: t.arg({ type: [PartitionInput], description: partitionsArg }),
    },
    resolve: async (_root, args, ctx) =>
      (
        await addDatasetVersion(
          ctx.services.db,
          ctx.ability,
          ctx.identity,
          {
            name: args.name,
            digest: args.digest,
            sample: (args.sample ?? undefined) as Record<string, unknown>[] | undefined,
            profile: args.profile ?? undefined,
            partitions: args.partitions?.map((p) => ({ name: p.name, digest: p.digest, rows: p.rows ?? undefined })),
            columns: args.columns.map((c) => ({ name: c.name, type: c.type, label: c.label ? labelIn(c.label) : undefined })),
          },
          ctx.services.config.catalogCeiling,
        )
      ).dataset,
  }),
  setColumnLabel: t.field({
    type: LabelRef,
    description: 'Classifies a column or raises its label; never below the computed label. Lowering needs requestDeclassification.',
    args: {
      dataset: t.arg.string({ required: true }),
      column: t.arg.string({ required: true }),
      label: t.arg({ type: LabelInput, required: true }),
      reason: t.arg.string(),
    },
    resolve: (_root, args, ctx) =>
      setColumnLabel(
        ctx.services.db,
        ctx.ability,
        ctx.identity,
        { dataset: args.dataset, column: args.column, label: labelIn(args.label), reason: args.reason ?? undefined },
        ctx.services.config.catalogCeiling,
      ),
  }),
  requestDeclassification: t.field({
    type: DeclassificationRef,
    args: {
      dataset: t.arg.string({ required: true }),
      column: t.arg.string({ required: true }),
      label: t.arg({ type: LabelInput, required: true }),
      reason: t.arg.string({ required: true }),
    },
    resolve: (_root, args, ctx) =>
      requestDeclassification(ctx.services.db, ctx.ability, ctx.identity, {
        dataset: args.dataset,
        column: args.column,
        label: labelIn(args.label),
        reason: args.reason,
      }),
  }),
  decideDeclassification: t.field({
    type: DeclassificationRef,
    description: 'Approves (applying the lower label) or rejects a declassification; never by its author.',
    args: { id: t.arg.id({ required: true }), approve: t.arg.boolean({ required: true }) },
    resolve: (_root, args, ctx) => decideDeclassification(ctx.services.db, ctx.ability, ctx.identity, { id: String(args.id), approve: args.approve }),
  }),
}));

const PreviewGroupRef = builder.objectRef<NonNullable<Preview['groups']>[number]>('DatasetPreviewGroup').implement({
  fields: (t) => ({
    key: t.expose('key', { type: 'JSON', description: 'The grouped columns and their values.' }),
    count: t.exposeInt('count'),
  }),
});
const PreviewRef = builder.objectRef<Preview>('DatasetPreview').implement({
  description: 'Sample rows with only the columns your clearance admits; the others are named in `withheld`.',
  fields: (t) => ({
    columns: t.exposeStringList('columns'),
    withheld: t.exposeStringList('withheld'),
    rows: t.field({ type: ['JSON'], description: 'Empty when grouped.', resolve: (p) => p.rows }),
    groups: t.field({
      type: [PreviewGroupRef],
      nullable: true,
      description: 'With `groupBy`: a count per distinct value of the grouped columns.',
      resolve: (p) => p.groups,
    }),
  }),
});
const PreviewFilter = builder.inputType('DatasetPreviewFilter', {
  fields: (t) => ({ column: t.string({ required: true }), equals: t.field({ type: 'JSON' }) }),
});
const PreviewOrder = builder.inputType('DatasetPreviewOrder', { fields: (t) => ({ column: t.string({ required: true }), descending: t.boolean() }) });

builder.queryField('datasetPreview', (t) =>
  t.field({
    type: PreviewRef,
    description: 'A few sample rows of a dataset. A column your clearance may not read is withheld, and cannot be used to filter, sort or group.',
    args: {
      name: t.arg.string({ required: true }),
      columns: t.arg.stringList(),
      where: t.arg({ type: [PreviewFilter] }),
      orderBy: t.arg({ type: PreviewOrder }),
      groupBy: t.arg.stringList({ description: 'Counts per distinct value of these columns instead of rows; a withheld column cannot be grouped on.' }),
      limit: t.arg.int({ defaultValue: 20, description: '1 to 100 (rows, or groups).' }),
    },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Dataset', 'preview datasets');
      return previewDataset(
        ctx.services.db,
        { identity: ctx.identity, grants: ctx.grants },
        {
          dataset: args.name,
          columns: args.columns ?? undefined,
          where: args.where?.map((w) => ({ column: w.column, equals: w.equals })) ?? undefined,
          orderBy: args.orderBy ? { column: args.orderBy.column, descending: args.orderBy.descending ?? false } : undefined,
          groupBy: args.groupBy ?? undefined,
          limit: args.limit ?? 20,
        },
      );
    },
  }),
);

builder.queryField('dataset', (t) =>
  t.field({
    type: DatasetRef,
    nullable: true,
    args: { name: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Dataset', 'read datasets');
      const [namespace, name] = args.name.split('/');
      return datasetWithName(ctx.services.db, namespace ?? '', name ?? '');
    },
  }),
);
