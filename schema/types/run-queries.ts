// The run queries: one run by id, and the run list (newest first) with its filter and keyset pages.
import { type ResolveCursorConnectionArgs, resolveCursorConnection } from '@pothos/plugin-relay';
import { assertCan } from '../../server/auth/ability';
import { identityWithName } from '../../server/auth/identities';
import { decodeTimeCursor, encodeTimeCursor, type TimeCursor } from '../../server/db/keyset';
import type { Run } from '../../server/db/tables/runs';
import { badInput } from '../../server/errors';
import { runById, runsPage } from '../../server/runs/queries';
import { workflowWithName } from '../../server/workflows/queries';
import { builder } from '../builder';
import { checkId } from '../ids';
import { DomainEnum, RunStatusEnum, TriggerEnum } from './enums';
import { RunRef } from './runs';

const RunFilter = builder.inputType('RunFilter', {
  fields: (t) => ({
    workflow: t.string({ description: 'Workflow name.' }),
    status: t.field({ type: [RunStatusEnum] }),
    trigger: t.field({ type: [TriggerEnum] }),
    createdBy: t.string({ description: 'Name of the identity that started the runs.' }),
    domain: t.field({ type: [DomainEnum] }),
    since: t.field({ type: 'DateTime', description: 'Runs created at or after this time.' }),
    until: t.field({ type: 'DateTime', description: 'Runs created before this time.' }),
  }),
});

const encodeCursor = (r: Run & { cursorAt?: string }) => encodeTimeCursor({ at: r.cursorAt ?? r.createdAt.toISOString(), id: r.id });
const decodeCursor = (cursor: string): TimeCursor => {
  const decoded = decodeTimeCursor(cursor);
  if (!decoded) throw badInput('The pagination cursor is malformed; pass back an endCursor or startCursor from a previous page.');
  return decoded;
};

builder.queryFields((t) => ({
  run: t.field({
    type: RunRef,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Run', 'read runs');
      return runById(ctx.services.db, checkId(String(args.id), 'run'));
    },
  }),
  runs: t.connection({
    type: RunRef,
    description: 'Runs, newest first.',
    args: { filter: t.arg({ type: RunFilter }) },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Run', 'list runs');
      const none = () => resolveCursorConnection({ args, toCursor: encodeCursor }, async () => [] as Run[]);
      let workflowId: string | undefined;
      if (args.filter?.workflow) {
        const w = await workflowWithName(ctx.services.db, args.filter.workflow);
        if (!w) return none();
        workflowId = w.id;
      }
      let createdBy: string | undefined;
      if (args.filter?.createdBy) {
        const who = await identityWithName(ctx.services.db, args.filter.createdBy);
        if (!who) return none();
        createdBy = who.id;
      }
      const filter = { ...args.filter, workflowId, createdBy };
      return resolveCursorConnection({ args, toCursor: encodeCursor }, ({ before, after, limit, inverted }: ResolveCursorConnectionArgs) =>
        runsPage(ctx.services.db, filter, {
          after: after ? decodeCursor(after) : undefined,
          before: before ? decodeCursor(before) : undefined,
          limit,
          inverted,
        }),
      );
    },
  }),
}));
