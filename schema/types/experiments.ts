// Experiments (named groups of runs), and a run's experiment, name, tags and note with the mutations that edit
// them. The work is in server/tracking/.
import { type ResolveCursorConnectionArgs, resolveCursorConnection } from '@pothos/plugin-relay';
import { assertCan } from '../../server/auth/ability';
import type { Experiment, RunTag } from '../../server/db/tables/tracking';
import { badInput } from '../../server/errors';
import { assertOwns, ownerOf } from '../../server/teams/ownership';
import { deleteRunTag, setRunNote, setRunTags, tagsOfRuns } from '../../server/tracking/annotations';
import { changeExperiment, experimentOwned } from '../../server/tracking/experiment-changes';
import { assertMayWriteExperiments, experimentByName, experimentsByIds, experimentsPage, runCounts } from '../../server/tracking/experiments';
import { guard } from '../auth';
import { builder } from '../builder';
import type { Context } from '../context';
import { checkId } from '../ids';
import { IdentityRef } from './identity';
import { RunRef } from './runs';
import { viewerCanType } from './viewer-can';
import { WorkflowRef } from './workflows';

const ExperimentTagRef = builder.objectRef<{ key: string; value: string }>('ExperimentTag').implement({
  description: 'A tag on an experiment.',
  fields: (t) => ({ key: t.exposeString('key'), value: t.exposeString('value') }),
});

const ExperimentViewerCan = viewerCanType<Experiment>('ExperimentViewerCan', 'What the caller may do to this experiment.', {
  change: {
    description: 'updateExperiment: rename, delete or restore it, set or remove its tags.',
    check: async (e, ctx) => {
      const caller = { identity: ctx.identity, ability: ctx.ability, task: null };
      assertMayWriteExperiments(caller);
      await assertOwns(ctx.services.db, ownerOf(ctx.identity, ctx.ability), experimentOwned(e), `Experiment "${e.name}"`, 'change');
    },
  },
});

export const ExperimentRef = builder.loadableObjectRef('Experiment', {
  load: (ids: string[], ctx: Context) => experimentsByIds(ctx.services.db, ids),
  sort: (e) => e.id,
});

ExperimentRef.implement({
  authScopes: guard('Experiment', 'Experiment'),
  description: 'A named group of runs: a workflow’s own (named after it) or one a run named.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    description: t.exposeString('description'),
    workflow: t.field({ type: WorkflowRef, nullable: true, description: 'The workflow whose own experiment this is.', resolve: (e) => e.workflowId }),
    createdBy: t.field({ type: IdentityRef, nullable: true, resolve: (e) => e.createdBy }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    tags: t.field({
      type: [ExperimentTagRef],
      description: 'Its tags (MLflow’s experiment tags), by key.',
      resolve: (e) =>
        Object.entries(e.tags)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([key, value]) => ({ key, value })),
    }),
    runCount: t.loadable({
      type: 'Int',
      description: 'How many runs it groups (deleted runs left out).',
      load: async (ids: string[], ctx: Context) => {
        const counts = await runCounts(ctx.services.db, ids);
        return ids.map((id) => counts.get(id) ?? 0);
      },
      resolve: (e) => e.id,
    }),
    viewerCan: t.field({ type: ExperimentViewerCan, description: 'What you may do to it.', resolve: (e) => e }),
    deletedAt: t.expose('deletedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When it was deleted (its runs are kept; new runs are refused until it is restored); null while it is not.',
    }),
  }),
});

const RunTagRef = builder.objectRef<RunTag>('RunTag').implement({
  description: 'A free tag on a run, with who set it last and when.',
  fields: (t) => ({
    key: t.exposeString('key'),
    value: t.exposeString('value'),
    setBy: t.field({ type: IdentityRef, nullable: true, resolve: (r) => r.setBy }),
    setAt: t.expose('setAt', { type: 'DateTime' }),
  }),
});

const RunTagInput = builder.inputType('RunTagInput', {
  fields: (t) => ({ key: t.string({ required: true }), value: t.string({ required: true }) }),
});

builder.objectFields(RunRef, (t) => ({
  experiment: t.field({ type: ExperimentRef, description: 'The experiment the run is grouped in.', resolve: (r) => r.experimentId }),
  name: t.exposeString('name', { nullable: true, description: 'A display name (an MLflow run_name); null: shown by its id.' }),
  tags: t.loadableGroup({
    type: RunTagRef,
    nullable: true,
    description: 'Free tags, by key. Null (with a FORBIDDEN error) unless your teams are granted the run’s domain.',
    load: (ids: string[], ctx: Context) => tagsOfRuns(ctx.services.db, ids),
    group: (tag) => tag.runId,
    resolve: (r) => r.id,
  }),
  note: t.exposeString('note', {
    nullable: true,
    description: 'A free note; null when none (or, with a FORBIDDEN error, unless your teams are granted the run’s domain).',
  }),
  noteBy: t.field({ type: IdentityRef, nullable: true, description: 'Who wrote the note last.', resolve: (r) => r.noteBy }),
  noteAt: t.expose('noteAt', { type: 'DateTime', nullable: true, description: 'When the note was written last.' }),
}));

const toCursor = (e: Experiment) => Buffer.from(e.name).toString('base64url');
const fromCursor = (c: string) => Buffer.from(c, 'base64url').toString();

builder.queryFields((t) => ({
  experiments: t.connection({
    type: ExperimentRef,
    description: 'Experiments by name (deleted ones left out unless `includeDeleted`).',
    args: { includeDeleted: t.arg.boolean({ description: 'List deleted experiments too (to restore one).' }) },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Experiment', 'list experiments');
      return resolveCursorConnection({ args, toCursor }, ({ before, after, limit, inverted }: ResolveCursorConnectionArgs) =>
        experimentsPage(ctx.services.db, {
          after: after ? fromCursor(after) : undefined,
          before: before ? fromCursor(before) : undefined,
          limit,
          inverted,
          deleted: args.includeDeleted ?? false,
        }),
      );
    },
  }),
  experiment: t.field({
    type: ExperimentRef,
    nullable: true,
    args: { name: t.arg.string({ required: true }) },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Experiment', 'read experiments');
      const found = await experimentByName(ctx.services.db, args.name);
      return found && !found.deletedAt ? found : null;
    },
  }),
}));

builder.mutationFields((t) => ({
  setRunTags: t.field({
    type: RunRef,
    description: 'Sets tags on a run (adding or replacing by key), also after it ended; needs the right to start runs in its domain.',
    args: { runId: t.arg.id({ required: true }), tags: t.arg({ type: [RunTagInput], required: true }) },
    resolve: (_root, args, ctx) => setRunTags(ctx.services.db, ctx.ability, ctx.identity, checkId(String(args.runId), 'run'), args.tags),
  }),
  deleteRunTag: t.field({
    type: RunRef,
    description: 'Removes a tag from a run (no error if it has none by that key).',
    args: { runId: t.arg.id({ required: true }), key: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => setOrDelete(ctx, String(args.runId), args.key),
  }),
  updateExperiment: t.field({
    type: ExperimentRef,
    description:
      'Renames an experiment, deletes it (its runs are kept; new runs are refused) or restores it, and sets or removes its tags. For admins, the writing members of its owning team, or its creator when it has none; audited.',
    args: {
      experiment: t.arg.id({ required: true, description: 'Its id (or its name).' }),
      name: t.arg.string({ description: 'A new name (1 to 500 characters, not taken).' }),
      deleted: t.arg.boolean({ description: 'true: delete it; false: restore it.' }),
      setTags: t.arg({ type: [RunTagInput], description: 'Tags to add or replace, by key.' }),
      deleteTags: t.arg.stringList({ description: 'Keys of tags to remove (each must exist).' }),
    },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Experiment', 'change experiments');
      return changeExperiment(ctx.services.db, { identity: ctx.identity, ability: ctx.ability, task: null }, String(args.experiment), {
        ...(args.name != null ? { name: args.name } : {}),
        ...(args.deleted != null ? { deleted: args.deleted } : {}),
        ...(args.setTags ? { setTags: args.setTags } : {}),
        ...(args.deleteTags ? { deleteTags: args.deleteTags } : {}),
      });
    },
  }),
  setRunNote: t.field({
    type: RunRef,
    description: 'Sets a run’s note (at most 64 KiB; empty clears it), also after it ended; needs the right to start runs in its domain.',
    args: { runId: t.arg.id({ required: true }), note: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => setRunNote(ctx.services.db, ctx.ability, ctx.identity, checkId(String(args.runId), 'run'), args.note),
  }),
}));

function setOrDelete(ctx: Context, runId: string, key: string) {
  if (!key) throw badInput('key must name the tag to remove.');
  return deleteRunTag(ctx.services.db, ctx.ability, ctx.identity, checkId(runId, 'run'), key);
}
