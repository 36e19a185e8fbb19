// Modules, their versions and tags: the catalog queries and publishing.
import { and, asc, eq, ilike, or } from 'drizzle-orm';
import { assertCan } from '../../server/auth/ability';
import { moduleTags, moduleVersions, modules, type Module, type ModuleTagEvent, type ModuleTestResult, type ModuleVersion } from '../../server/db/tables/modules';
import { AtelierError } from '../../server/errors';
import { parseModuleRef } from '../../server/modules/ref';
import { publishModuleVersion, type PublishResult } from '../../server/modules/publish';
import { deprecateModuleVersion, rollbackModuleTag, setModuleTag, type TagMove } from '../../server/modules/tags';
import { guard } from '../auth';
import { NodeRef } from '../node';
import { builder } from '../builder';
import { IdentityRef } from './identity';
import { TeamRef } from './teams';

interface TagRow {
  moduleId: string;
  tag: string;
  versionId: string;
  updatedAt: Date;
}

export const ModuleVersionRef = builder.objectRef<ModuleVersion>('ModuleVersion');
export const ModuleRef = builder.objectRef<Module>('Module');
const ModuleTagRef = builder.objectRef<TagRow>('ModuleTag');

const UsageRef = builder.objectRef<{ runs: number; lastUsedAt: Date | null }>('ModuleUsage').implement({
  fields: (t) => ({
    runs: t.exposeInt('runs', { description: 'Runs that had a task pinned to this version.' }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true }),
  }),
});

const TestResultRef = builder.objectRef<ModuleTestResult>('ModuleTestResult').implement({
  description: 'The manifest’s test command, as the publisher ran it (`npx atelier module push --test`).',
  fields: (t) => ({
    command: t.exposeString('command'),
    passed: t.exposeBoolean('passed'),
    exitCode: t.exposeInt('exitCode', { nullable: true }),
    durationMs: t.exposeInt('durationMs'),
    output: t.exposeString('output', { description: 'The last lines of its output.' }),
  }),
});

const TagEventRef = builder.objectRef<ModuleTagEvent>('ModuleTagEvent').implement({
  description: 'One move of a tag: who moved it, from which version to which, when and why.',
  fields: (t) => ({
    tag: t.exposeString('tag'),
    action: t.exposeString('action', { description: '`move` (publish or promote) or `rollback`.' }),
    from: t.field({ type: ModuleVersionRef, nullable: true, resolve: (e, _a, ctx) => (e.fromVersionId ? ctx.loaders.moduleVersion.load(e.fromVersionId) : null) }),
    to: t.field({ type: ModuleVersionRef, resolve: async (e, _a, ctx) => (await ctx.loaders.moduleVersion.load(e.toVersionId))! }),
    movedBy: t.field({ type: IdentityRef, nullable: true, resolve: (e, _a, ctx) => (e.movedBy ? ctx.loaders.identity.load(e.movedBy) : null) }),
    reason: t.exposeString('reason', { nullable: true }),
    at: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

ModuleRef.implement({
  authScopes: guard('Module', 'Module'),
  interfaces: [NodeRef],
  description: 'A reusable unit of work, `namespace/name`, with immutable versions and movable tags.',
  fields: (t) => ({
    id: t.exposeID('id'),
    namespace: t.exposeString('namespace'),
    name: t.exposeString('name'),
    fullName: t.string({ resolve: (m) => `${m.namespace}/${m.name}` }),
    description: t.exposeString('description'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    versions: t.field({
      type: [ModuleVersionRef],
      description: 'Versions, newest first.',
      args: { limit: t.arg.int({ defaultValue: 20 }) },
      resolve: async (m, args, ctx) => (await ctx.loaders.versionsOf.load(m.id)).slice(0, Math.min(Math.max(args.limit ?? 20, 1), 200)),
    }),
    tags: t.field({
      type: [ModuleTagRef],
      resolve: (m, _args, ctx) => ctx.loaders.tagsOf.load(m.id),
    }),
    latestVersion: t.field({
      type: ModuleVersionRef,
      nullable: true,
      description: 'The most recently published version (whatever the tags say).',
      resolve: async (m, _a, ctx) => (await ctx.loaders.versionsOf.load(m.id))[0] ?? null,
    }),
    owner: t.field({ type: TeamRef, nullable: true, description: 'The team owning the namespace; null while none does (then only admins publish).', resolve: (m, _a, ctx) => ctx.loaders.ownerOfNamespace.load(m.namespace) }),
    usage: t.field({
      type: UsageRef,
      description: 'Runs that used any version of this module.',
      resolve: async (m, _a, ctx) => {
        const usages = await Promise.all((await ctx.loaders.versionsOf.load(m.id)).map((v) => ctx.loaders.usageOfVersion.load(v.id)));
        const last = usages.map((u) => u.lastUsedAt?.getTime() ?? 0).reduce((a, b) => Math.max(a, b), 0);
        return { runs: usages.reduce((n, u) => n + u.runs, 0), lastUsedAt: last ? new Date(last) : null };
      },
    }),
    tagHistory: t.field({
      type: [TagEventRef],
      description: 'Moves of the module’s tags, newest first.',
      args: { tag: t.arg.string(), limit: t.arg.int({ defaultValue: 50 }) },
      resolve: async (m, args, ctx) =>
        (await ctx.loaders.tagEventsOf.load(m.id)).filter((e) => !args.tag || e.tag === args.tag).slice(0, Math.min(Math.max(args.limit ?? 50, 1), 500)),
    }),
  }),
});

ModuleVersionRef.implement({
  authScopes: guard('ModuleVersion', 'ModuleVersion'),
  interfaces: [NodeRef],
  description: 'An immutable, content-addressed module artifact with its manifest.',
  fields: (t) => ({
    id: t.exposeID('id'),
    version: t.exposeString('version'),
    digest: t.exposeString('digest'),
    sizeBytes: t.exposeInt('sizeBytes'),
    manifest: t.expose('manifest', { type: 'JSON' }),
    entrypoint: t.string({ resolve: (v) => v.manifest.entrypoint }),
    runtime: t.string({ resolve: (v) => v.manifest.runtime }),
    parameterSchema: t.field({ type: 'JSON', nullable: true, resolve: (v) => v.manifest.parameters ?? null }),
    source: t.expose('source', { type: 'JSON' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    module: t.field({ type: ModuleRef, resolve: async (v, _a, ctx) => (await ctx.loaders.module.load(v.moduleId))! }),
    ref: t.string({
      description: '`namespace/name@version`',
      resolve: async (v, _a, ctx) => {
        const m = (await ctx.loaders.module.load(v.moduleId))!;
        return `${m.namespace}/${m.name}@${v.version}`;
      },
    }),
    publishedBy: t.field({ type: IdentityRef, nullable: true, resolve: (v, _a, ctx) => (v.publishedBy ? ctx.loaders.identity.load(v.publishedBy) : null) }),
    tags: t.stringList({ description: 'The tags pointing at this version now.', resolve: async (v, _a, ctx) => (await ctx.loaders.tagsOf.load(v.moduleId)).filter((tag) => tag.versionId === v.id).map((tag) => tag.tag) }),
    usage: t.field({ type: UsageRef, resolve: (v, _a, ctx) => ctx.loaders.usageOfVersion.load(v.id) }),
    testResult: t.field({ type: TestResultRef, nullable: true, resolve: (v) => v.testResult }),
    deprecated: t.boolean({ resolve: (v) => v.deprecatedAt !== null }),
    deprecatedAt: t.expose('deprecatedAt', { type: 'DateTime', nullable: true }),
    deprecationReason: t.exposeString('deprecationReason', { nullable: true }),
  }),
});

ModuleTagRef.implement({
  description: 'A movable pointer to a module version (`latest`, `latestAlpha`, …).',
  fields: (t) => ({
    tag: t.exposeString('tag'),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    version: t.field({ type: ModuleVersionRef, resolve: async (tag, _a, ctx) => (await ctx.loaders.moduleVersion.load(tag.versionId))! }),
  }),
});

builder.queryFields((t) => ({
  modules: t.field({
    type: [ModuleRef],
    description: 'The module catalog, by namespace and name.',
    args: { namespace: t.arg.string(), search: t.arg.string({ description: 'Part of the name or description.' }) },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Module', 'list modules');
      const like = args.search ? `%${args.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : null;
      return ctx.services.db
        .select()
        .from(modules)
        .where(and(args.namespace ? eq(modules.namespace, args.namespace) : undefined, like ? or(ilike(modules.name, like), ilike(modules.description, like)) : undefined))
        .orderBy(asc(modules.namespace), asc(modules.name))
        .limit(1000);
    },
  }),
  module: t.field({
    type: ModuleRef,
    nullable: true,
    description: 'A module by `namespace/name`.',
    args: { name: t.arg.string({ required: true }) },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Module', 'read modules');
      const { namespace, name } = parseModuleRef(args.name);
      const [m] = await ctx.services.db.select().from(modules).where(and(eq(modules.namespace, namespace), eq(modules.name, name ?? '')));
      return m ?? null;
    },
  }),
  moduleVersion: t.field({
    type: ModuleVersionRef,
    nullable: true,
    description: 'Resolves `namespace/name@tag-or-version` to a version, as a run starting now would.',
    args: { ref: t.arg.string({ required: true }) },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'ModuleVersion', 'read module versions');
      const { namespace, name, selector } = parseModuleRef(args.ref);
      const [m] = await ctx.services.db.select().from(modules).where(and(eq(modules.namespace, namespace), eq(modules.name, name ?? '')));
      if (!m) return null;
      const [tagged] = await ctx.services.db
        .select({ v: moduleVersions })
        .from(moduleTags)
        .innerJoin(moduleVersions, eq(moduleVersions.id, moduleTags.versionId))
        .where(and(eq(moduleTags.moduleId, m.id), eq(moduleTags.tag, selector)));
      if (tagged) return tagged.v;
      const [v] = await ctx.services.db.select().from(moduleVersions).where(and(eq(moduleVersions.moduleId, m.id), eq(moduleVersions.version, selector)));
      return v ?? null;
    },
  }),
}));

const PublishResultRef = builder.objectRef<PublishResult>('PublishModuleVersionResult').implement({
  fields: (t) => ({
    version: t.field({ type: ModuleVersionRef, resolve: (r) => r.version }),
    created: t.exposeBoolean('created', { description: 'False when identical content was already published (nothing was uploaded twice).' }),
    movedTags: t.exposeStringList('movedTags', { description: 'The tags now pointing at the version; none when its test failed.' }),
  }),
});

const TagMoveRef = builder.objectRef<TagMove>('ModuleTagMove').implement({
  fields: (t) => ({
    module: t.field({ type: ModuleRef, resolve: (r) => r.module }),
    tag: t.exposeString('tag'),
    version: t.field({ type: ModuleVersionRef, resolve: (r) => r.version }),
    previous: t.field({ type: ModuleVersionRef, nullable: true, resolve: (r) => r.previous }),
  }),
});

const ModuleSourceInput = builder.inputType('ModuleSourceInput', {
  fields: (t) => ({
    repository: t.string(),
    commit: t.string(),
    branch: t.string(),
    dirty: t.boolean(),
  }),
});

const TestResultInput = builder.inputType('ModuleTestResultInput', {
  fields: (t) => ({
    command: t.string({ required: true }),
    passed: t.boolean({ required: true }),
    exitCode: t.int(),
    durationMs: t.int({ required: true }),
    output: t.string({ required: true }),
  }),
});

builder.mutationFields((t) => ({
  publishModuleVersion: t.field({
    type: PublishResultRef,
    description:
      'Publishes a module from an uploaded tar.gz archive holding `atelier.module.yaml` at its root, and moves tags to it: the given ones, else `latestAlpha` (and `latest` while the module has none). ' +
      'Without an artifact, `digest` must name content already published: its tags move and nothing is uploaded. Only members of the team owning the namespace (and admins) may publish.',
    args: {
      artifact: t.arg({ type: 'File' }),
      digest: t.arg.string({ description: 'The archive digest the client computed; an upload that hashes otherwise is refused.' }),
      source: t.arg({ type: ModuleSourceInput }),
      tags: t.arg.stringList(),
      testResult: t.arg({ type: TestResultInput, description: 'The test command’s result; a failed test records the version but moves no tag.' }),
      force: t.arg.boolean({ description: 'Move tags even onto a deprecated version.' }),
    },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'publish', 'Module', 'publish modules');
      const file = args.artifact;
      if (file && file.size > ctx.services.config.maxUploadBytes) {
        throw new AtelierError('PAYLOAD_TOO_LARGE', `The artifact is ${file.size} bytes; the limit is ${ctx.services.config.maxUploadBytes} (ATELIER_MAX_UPLOAD_MB). Add large files to .atelierignore.`);
      }
      const testResult = args.testResult ? { ...args.testResult, exitCode: args.testResult.exitCode ?? null, output: args.testResult.output.slice(-8000) } : undefined;
      return publishModuleVersion(
        ctx.services.db,
        ctx.services.store,
        ctx.ability,
        {
          archive: file ? new Uint8Array(await file.arrayBuffer()) : undefined,
          expectedDigest: args.digest ?? undefined,
          source: args.source ?? undefined,
          tags: args.tags ?? undefined,
          testResult,
          force: args.force ?? false,
        },
        ctx.identity,
      );
    },
  }),
  setModuleTag: t.field({
    type: TagMoveRef,
    description: 'Promotes: points a tag of a module at a version (a version number or another tag, e.g. promote `latestAlpha` to `latest`).',
    args: {
      module: t.arg.string({ required: true, description: '`namespace/name`' }),
      tag: t.arg.string({ required: true }),
      version: t.arg.string({ required: true, description: 'A version number, or a tag whose version to use.' }),
      reason: t.arg.string(),
      force: t.arg.boolean({ description: 'Allow a deprecated version.' }),
    },
    resolve: (_root, args, ctx) =>
      setModuleTag(ctx.services.db, ctx.ability, ctx.identity, { module: args.module, tag: args.tag, version: args.version, reason: args.reason ?? undefined, force: args.force ?? false }),
  }),
  rollbackModuleTag: t.field({
    type: TagMoveRef,
    description: 'Moves a tag back to the version it pointed at before its last move; again, to the one before that.',
    args: { module: t.arg.string({ required: true }), tag: t.arg.string({ required: true }), reason: t.arg.string(), force: t.arg.boolean() },
    resolve: (_root, args, ctx) => rollbackModuleTag(ctx.services.db, ctx.ability, ctx.identity, { module: args.module, tag: args.tag, reason: args.reason ?? undefined, force: args.force ?? false }),
  }),
  deprecateModuleVersion: t.field({
    type: ModuleVersionRef,
    description: 'Deprecates a version: runs that pin it keep working, but no tag moves to it without `force`. `deprecated: false` restores it.',
    args: { ref: t.arg.string({ required: true, description: '`namespace/name@version`' }), reason: t.arg.string(), deprecated: t.arg.boolean({ defaultValue: true }) },
    resolve: (_root, args, ctx) => deprecateModuleVersion(ctx.services.db, ctx.ability, ctx.identity, { ref: args.ref, reason: args.reason ?? undefined, deprecated: args.deprecated ?? true }),
  }),
}));
