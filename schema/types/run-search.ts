// Searching runs with the filter language (server/tracking/filter.ts) and comparing them side by side. Both read
// only runs whose run data the caller may read (server/tracking/access.ts); the work is in server/tracking/.
import { type ResolveCursorConnectionArgs, resolveCursorConnection } from '@pothos/plugin-relay';
import { assertCan } from '../../server/auth/ability';
import { runDataDomains } from '../../server/tracking/access';
import { type FoundRun, searchRuns } from '../../server/tracking/search';
import { builder } from '../builder';
import { RunRef } from './runs';

builder.queryFields((t) => ({
  searchRuns: t.connection({
    type: RunRef,
    description:
      'Runs whose run data you may read, matching `filter` (e.g. `metrics.accuracy > 0.95 and params.lr <= 0.1 and tags.dataset = \'v2\'`; see the README), ordered by `orderBy` (e.g. `["metrics.accuracy DESC"]`; default newest first). A metric, param or tag no run has matches nothing.',
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
