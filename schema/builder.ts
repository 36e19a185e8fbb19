// The Pothos schema builder: plugins, context, scalar types and authorization. It defines no types (see types/).
import SchemaBuilder from '@pothos/core';
import DataloaderPlugin from '@pothos/plugin-dataloader';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import type { Action, SubjectType } from '../server/auth/ability';
import { unauthorized } from './auth';
import type { Context } from './context';

export const builder = new SchemaBuilder<{
  Context: Context;
  DefaultFieldNullability: false;
  DefaultAuthStrategy: 'all';
  AuthScopes: {
    /** The ability allows `action` on the subject type (a type-level check; instances are checked by their types). */
    can: [Action, SubjectType];
  };
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
    JSON: { Input: unknown; Output: unknown };
    MetricValue: { Input: number; Output: number };
    File: { Input: File; Output: never };
  };
}>({
  // fieldAbility first: it gives each field of a guarded type its scope, which scope-auth then enforces.
  plugins: ['fieldAbility', ScopeAuthPlugin, RelayPlugin, DataloaderPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    // Every scope in a map must pass, not any one of them.
    defaultStrategy: 'all',
    // A subscription is authorized when it is set up, not per event (and re-checked while it runs: see live-access.ts).
    authorizeOnSubscribe: true,
    authScopes: (ctx) => ({
      can: ([action, subjectType]) => ctx.ability.can(action, subjectType),
    }),
    unauthorizedError: (_parent, _ctx, info, result) => unauthorized(info, result.message.startsWith('Not authorized to read fields')),
  },
  relay: { clientMutationId: 'omit', cursorType: 'String', nodeQueryOptions: false, nodesQueryOptions: false },
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
