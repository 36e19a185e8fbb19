// `node(id)`: any stored object by its UUID, answered only if the caller may read it. An object the caller may
// not read is answered exactly like one that does not exist (null, no error), so the query is no existence oracle.
import { rowsWithId } from '../../server/db/by-id';
import { isUuid } from '../../server/db/uuid';
import { mayReadObject } from '../auth';
import { builder } from '../builder';
import { NodeRef, nodeTypes } from '../node';

builder.queryField('node', (t) =>
  t.field({
    type: NodeRef,
    nullable: true,
    description: 'Any stored object by its id; null when there is none or you may not read it (the two look the same).',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const id = String(args.id);
      if (!isUuid(id)) return null;
      for (const [type, row] of await rowsWithId(ctx.services.db, id)) {
        if (!row) continue;
        if (!(await mayReadObject(ctx, type, row))) return null;
        nodeTypes.set(row, type);
        return row as { id: string };
      }
      return null;
    },
  }),
);
