// Identities: `viewer` says who a token belongs to; admins create users and service accounts and their tokens.
import { assertCan, parseScopes } from '../../server/auth/ability';
import {
  createIdentity,
  type IssuedToken,
  identitiesByIds,
  issueFor,
  ownerFor,
  revokeToken,
  revokeTokensOf,
  serviceAccountWithName,
} from '../../server/auth/identities';
import { humanBehind } from '../../server/auth/people';
import { notFound } from '../../server/errors';
import { guard } from '../auth';
import { builder } from '../builder';
import type { Context } from '../context';
import { NodeRef } from '../node';
import { RoleEnum } from './enums';

/** An identity by id, loaded once per request however many fields name it (a missing one is null). */
export const IdentityRef = builder.loadableObjectRef('Identity', {
  load: (ids: string[], ctx: Context) => identitiesByIds(ctx.services.db, ids),
  sort: (identity) => identity.id,
});

IdentityRef.implement({
  authScopes: guard('Identity', 'Identity'),
  interfaces: [NodeRef],
  description: 'A user or service account.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    kind: t.exposeString('kind'),
    role: t.exposeString('role'),
    owner: t.field({
      type: IdentityRef,
      nullable: true,
      description: 'A service account’s owner: the user it acts for (the two-person rule and private cache namespaces count it as that user).',
      resolve: (identity) => identity.ownerId,
    }),
  }),
});

builder.queryField('viewer', (t) => t.field({ type: IdentityRef, description: 'The identity of the caller.', resolve: (_root, _args, ctx) => ctx.identity }));

const ServiceAccountResult = builder.objectRef<IssuedToken>('IssuedToken').implement({
  description: 'A user or service account and a new token for it. The token is shown only here: store it in a secret store.',
  fields: (t) => ({
    identity: t.field({ type: IdentityRef, resolve: (r) => r.identity }),
    token: t.exposeString('token'),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true }),
    scopes: t.exposeStringList('scopes', {
      nullable: true,
      description: 'What the token is limited to (`action:Subject`); null: everything its identity may do.',
    }),
  }),
});

builder.mutationFields((t) => ({
  createUser: t.field({
    type: ServiceAccountResult,
    description: 'Creates a user with a role and issues their first token. Admins only.',
    args: {
      name: t.arg.string({ required: true }),
      role: t.arg({ type: RoleEnum, defaultValue: 'member' }),
      expiresInDays: t.arg.int({ description: 'The token expires after this many days; never when omitted.' }),
    },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'administer', 'Identity', 'create users');
      return createIdentity(ctx.services.db, ctx.identity, 'user', args.name, args.role ?? 'member', args.expiresInDays);
    },
  }),
  createServiceAccount: t.field({
    type: ServiceAccountResult,
    description: 'Creates a service account (for CI and other services) with a role, and issues its first token. Admins only.',
    args: {
      name: t.arg.string({ required: true }),
      role: t.arg({ type: RoleEnum, defaultValue: 'member' }),
      expiresInDays: t.arg.int({ description: 'The token expires after this many days; never when omitted.' }),
      scopes: t.arg.stringList({
        description:
          'Limit the token to these `action:Subject` scopes (read:Run, start:Run, publish:Module, read:*; read:Metrics to scrape GET /metrics); left out: everything the account may do.',
      }),
      owner: t.arg.string({
        description:
          'The user the account acts for; default: you. The two-person rule counts the account as its owner, so it never approves what its owner asked.',
      }),
    },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'administer', 'Identity', 'create service accounts');
      // Default: the human behind the admin creating it (a service account creating one passes on its own owner).
      const owner = args.owner ? (await ownerFor(ctx.services.db, args.owner)).id : humanBehind(ctx.identity);
      return createIdentity(ctx.services.db, ctx.identity, 'service', args.name, args.role ?? 'member', args.expiresInDays, args.scopes, owner);
    },
  }),
  issueServiceToken: t.field({
    type: ServiceAccountResult,
    description: 'Issues another token for a service account (to rotate it). Admins only.',
    args: {
      name: t.arg.string({ required: true }),
      expiresInDays: t.arg.int(),
      scopes: t.arg.stringList({
        description:
          'Limit the token to these `action:Subject` scopes (read:Run, start:Run, publish:Module, read:*; read:Metrics to scrape GET /metrics); left out: everything the account may do.',
      }),
    },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'administer', 'Identity', 'issue service tokens');
      if (args.scopes) parseScopes(args.scopes);
      const identity = await serviceAccountWithName(ctx.services.db, args.name);
      if (!identity) throw notFound(`No service account "${args.name}".`);
      return issueFor(ctx.services.db, ctx.identity, identity, args.expiresInDays, args.scopes);
    },
  }),
  revokeServiceTokens: t.field({
    type: 'Int',
    description: 'Revokes every live token of a service account; returns how many. Admins only.',
    args: { name: t.arg.string({ required: true }) },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'administer', 'Identity', 'revoke service tokens');
      const identity = await serviceAccountWithName(ctx.services.db, args.name);
      if (!identity) throw notFound(`No service account "${args.name}".`);
      return revokeTokensOf(ctx.services.db, ctx.identity, identity);
    },
  }),
  revokeToken: t.field({
    type: 'Boolean',
    description:
      'Revokes one token, any identity’s (the admin token too), given its text: a leaked one, or the old one once a rotation’s overlap ends; the identity’s other tokens stay live. Requests with it are refused at once, and its live subscriptions end within ATELIER_TOKEN_RECHECK_MS. False when it was revoked already. Admins only.',
    args: { token: t.arg.string({ required: true }) },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'administer', 'Identity', 'revoke tokens');
      return revokeToken(ctx.services.db, ctx.identity, args.token);
    },
  }),
}));
