// The caller: `viewer` says who a token belongs to.
import type { Identity } from '../../server/db/tables/identities';
import { builder } from '../builder';

export const IdentityRef = builder.objectRef<Identity>('Identity').implement({
  description: 'A user or service account.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    kind: t.exposeString('kind'),
    role: t.exposeString('role'),
  }),
});

builder.queryField('viewer', (t) => t.field({ type: IdentityRef, description: 'The identity of the caller.', resolve: (_root, _args, ctx) => ctx.identity }));
