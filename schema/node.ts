// The Node interface: every stored object with a UUID, fetchable by `node(id)` (see types/node.ts).
import { builder } from './builder';

/** The GraphQL type of each object `node(id)` found. */
export const nodeTypes = new WeakMap<object, string>();

export const NodeRef = builder.interfaceRef<{ id: string }>('Node').implement({
  description:
    'A stored object with a unique id. `node(id)` returns it only if you may read it: an object you may not read is indistinguishable from one that does not exist.',
  fields: (t) => ({ id: t.exposeID('id') }),
  resolveType: (node) => nodeTypes.get(node) ?? null,
});
