// The caller: `viewer` says who a token belongs to.
import { and, eq, isNull } from 'drizzle-orm';
import { assertCan, parseScopes } from '../../server/auth/ability';
import { ensureIdentity, issueToken } from '../../server/auth/tokens';
import type { Db } from '../../server/db/client';
import { identities, type Identity } from '../../server/db/tables/identities';
import { tokens } from '../../server/db/tables/tokens';
import { AtelierError, badInput, notFound } from '../../server/errors';
import { guard } from '../auth';
import { NodeRef } from '../node';
import { builder } from '../builder';

export const IdentityRef = builder.objectRef<Identity>('Identity').implement({
  authScopes: guard('Identity', 'Identity'),
  interfaces: [NodeRef],
  description: 'A user or service account.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    kind: t.exposeString('kind'),
    role: t.exposeString('role'),
  }),
});

builder.queryField('viewer', (t) => t.field({ type: IdentityRef, description: 'The identity of the caller.', resolve: (_root, _args, ctx) => ctx.identity }));

const RoleEnum = builder.enumType('Role', { values: ['admin', 'member', 'viewer'] as const });

const ServiceAccountResult = builder.objectRef<{ identity: Identity; token: string; expiresAt: Date | null; scopes: string[] | null }>('IssuedToken').implement({
  description: 'A user or service account and a new token for it. The token is shown only here: store it in a secret store.',
  fields: (t) => ({
    identity: t.field({ type: IdentityRef, resolve: (r) => r.identity }),
    token: t.exposeString('token'),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true }),
    scopes: t.exposeStringList('scopes', { nullable: true, description: 'What the token is limited to (`action:Subject`); null: everything its identity may do.' }),
  }),
});

const namePattern = /^[a-z0-9][a-z0-9._-]{1,62}$/;

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
      return createIdentity(ctx.services.db, 'user', args.name, args.role ?? 'member', args.expiresInDays);
    },
  }),
  createServiceAccount: t.field({
    type: ServiceAccountResult,
    description: 'Creates a service account (for CI and other services) with a role, and issues its first token. Admins only.',
    args: {
      name: t.arg.string({ required: true }),
      role: t.arg({ type: RoleEnum, defaultValue: 'member' }),
      expiresInDays: t.arg.int({ description: 'The token expires after this many days; never when omitted.' }),
      scopes: t.arg.stringList({ description: 'Limit the token to these `action:Subject` scopes (read:Run, start:Run, publish:Module, read:*); left out: everything the account may do.' }),
    },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'administer', 'Identity', 'create service accounts');
      return createIdentity(ctx.services.db, 'service', args.name, args.role ?? 'member', args.expiresInDays, args.scopes);
    },
  }),
  issueServiceToken: t.field({
    type: ServiceAccountResult,
    description: 'Issues another token for a service account (to rotate it). Admins only.',
    args: {
      name: t.arg.string({ required: true }),
      expiresInDays: t.arg.int(),
      scopes: t.arg.stringList({ description: 'Limit the token to these `action:Subject` scopes (read:Run, start:Run, publish:Module, read:*); left out: everything the account may do.' }),
    },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'administer', 'Identity', 'issue service tokens');
      if (args.scopes) parseScopes(args.scopes);
      const [identity] = await ctx.services.db.select().from(identities).where(and(eq(identities.name, args.name), eq(identities.kind, 'service')));
      if (!identity) throw notFound(`No service account "${args.name}".`);
      return issue(ctx.services.db, identity, args.expiresInDays, args.scopes);
    },
  }),
  revokeServiceTokens: t.field({
    type: 'Int',
    description: 'Revokes every live token of a service account; returns how many. Admins only.',
    args: { name: t.arg.string({ required: true }) },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'administer', 'Identity', 'revoke service tokens');
      const [identity] = await ctx.services.db.select().from(identities).where(and(eq(identities.name, args.name), eq(identities.kind, 'service')));
      if (!identity) throw notFound(`No service account "${args.name}".`);
      const revoked = await ctx.services.db
        .update(tokens)
        .set({ revokedAt: new Date() })
        .where(and(eq(tokens.identityId, identity.id), isNull(tokens.revokedAt)))
        .returning({ id: tokens.id });
      return revoked.length;
    },
  }),
}));

async function createIdentity(db: Db, kind: Identity['kind'], name: string, role: Identity['role'], expiresInDays: number | null | undefined, scopes?: string[] | null) {
  if (scopes) parseScopes(scopes);
  if (!namePattern.test(name)) throw badInput(`A ${kind === 'user' ? 'user' : 'service account'} name is 2–63 lowercase letters, digits, ".", "_" or "-".`);
  if (expiresInDays !== null && expiresInDays !== undefined && (expiresInDays < 1 || expiresInDays > 3650)) throw badInput('expiresInDays must be between 1 and 3650.');
  const [existing] = await db.select().from(identities).where(eq(identities.name, name));
  if (existing) throw new AtelierError('CONFLICT', `An identity named "${name}" already exists${existing.kind === 'service' ? '; issue it a new token with issueServiceToken' : ''}.`);
  return issue(db, await ensureIdentity(db, { name, kind, role }), expiresInDays, scopes);
}

async function issue(db: Db, identity: Identity, expiresInDays: number | null | undefined, scopes?: string[] | null) {
  const expiresAt = expiresInDays ? new Date(Date.now() + expiresInDays * 86_400_000) : null;
  const token = await issueToken(db, identity.id, `service:${identity.name}`, { expiresAt: expiresAt ?? undefined, scopes: scopes ?? null });
  return { identity, token, expiresAt, scopes: scopes ?? null };
}
