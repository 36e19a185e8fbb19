// The model registry's mutations: declare and delegate to server/registry/.
import { rollbackModelAlias, setModelAlias } from '../../server/registry/aliases';
import { saveModel } from '../../server/registry/models';
import { decideModelPromotion, requestModelPromotion } from '../../server/registry/promotions';
import { deprecateModelVersion, registerModelVersion } from '../../server/registry/versions';
import { builder } from '../builder';
import { checkId } from '../ids';
import { DomainEnum } from './enums';
import { ModelRef, ModelVersionRef, PromotionRef } from './models';

const RequirementInput = builder.inputType('ModelRequirementInput', {
  fields: (t) => ({ metric: t.string({ required: true }), min: t.float(), max: t.float() }),
});

const RegisteredRef = builder.objectRef<{ version: { id: string }; created: boolean }>('RegisteredModelVersion').implement({
  description: 'The version a registration made, or the existing one with the same content (created false).',
  fields: (t) => ({
    version: t.field({ type: ModelVersionRef, resolve: (r) => r.version.id }),
    created: t.exposeBoolean('created'),
  }),
});

const AliasMoveRef = builder.objectRef<{ version: { id: string }; previous: { id: string } | null; alias: string }>('ModelAliasMove').implement({
  fields: (t) => ({
    alias: t.exposeString('alias'),
    version: t.field({ type: ModelVersionRef, resolve: (m) => m.version.id }),
    previous: t.field({ type: ModelVersionRef, nullable: true, resolve: (m) => m.previous?.id ?? null }),
  }),
});

builder.mutationFields((t) => ({
  saveModel: t.field({
    type: ModelRef,
    description: 'Creates a model (namespace/name) or updates its description and metric requirements; writers of its namespace only.',
    args: {
      name: t.arg.string({ required: true }),
      description: t.arg.string(),
      requirements: t.arg({ type: [RequirementInput] }),
    },
    resolve: (_r, args, ctx) => saveModel(ctx.services.db, ctx.ability, ctx.identity, args),
  }),
  registerModelVersion: t.field({
    type: RegisteredRef,
    description:
      'Registers a task output (an artifact folder the task logged, or a task output by name) as a version of a model (made on first use). The same content again is the version already there.',
    args: {
      model: t.arg.string({ required: true }),
      taskId: t.arg.id({ required: true }),
      output: t.arg.string({ required: true }),
      flavor: t.arg.string(),
      signature: t.arg({ type: 'JSON' }),
      metadata: t.arg({ type: 'JSON' }),
    },
    resolve: (_r, args, ctx) =>
      registerModelVersion(ctx.services.db, ctx.services.store, ctx.ability, ctx.identity, {
        ...args,
        taskId: String(args.taskId),
        signature: args.signature as Record<string, unknown> | null,
        metadata: args.metadata as Record<string, unknown> | null,
      }),
  }),
  deprecateModelVersion: t.field({
    type: ModelVersionRef,
    description: 'Deprecates (or with deprecated: false restores) a version: no alias moves to it while deprecated.',
    args: { ref: t.arg.string({ required: true }), reason: t.arg.string(), deprecated: t.arg.boolean({ defaultValue: true }) },
    resolve: (_r, args, ctx) => deprecateModelVersion(ctx.services.db, ctx.ability, ctx.identity, { ...args, deprecated: args.deprecated ?? true }),
  }),
  setModelAlias: t.field({
    type: AliasMoveRef,
    description: 'Points an alias (outside production) at a version; the alias keeps the domain it was first set in.',
    args: {
      model: t.arg.string({ required: true }),
      alias: t.arg.string({ required: true }),
      version: t.arg.string({ required: true, description: 'A version number or another alias.' }),
      domain: t.arg({ type: DomainEnum }),
      reason: t.arg.string(),
    },
    resolve: (_r, args, ctx) => setModelAlias(ctx.services.db, ctx.ability, ctx.identity, { ...args, domain: args.domain ?? null }),
  }),
  rollbackModelAlias: t.field({
    type: AliasMoveRef,
    description: 'Moves an alias back to where it pointed before its last move (rollbacks stack).',
    args: { model: t.arg.string({ required: true }), alias: t.arg.string({ required: true }), reason: t.arg.string() },
    resolve: (_r, args, ctx) => rollbackModelAlias(ctx.services.db, ctx.ability, ctx.identity, args),
  }),
  requestModelPromotion: t.field({
    type: PromotionRef,
    description: 'Asks for a production alias to point at a version; a different person holding the production grant decides.',
    args: {
      model: t.arg.string({ required: true }),
      version: t.arg.string({ required: true }),
      alias: t.arg.string({ required: true }),
      reason: t.arg.string({ required: true }),
    },
    resolve: (_r, args, ctx) => requestModelPromotion(ctx.services.db, ctx.ability, ctx.identity, args),
  }),
  decideModelPromotion: t.field({
    type: PromotionRef,
    description: 'Approves (moving the alias) or rejects a promotion request.',
    args: { id: t.arg.id({ required: true }), approve: t.arg.boolean({ required: true }), reason: t.arg.string() },
    resolve: (_r, args, ctx) =>
      decideModelPromotion(ctx.services.db, ctx.ability, ctx.identity, {
        id: checkId(String(args.id), 'promotion'),
        approve: args.approve,
        reason: args.reason,
      }),
  }),
}));
