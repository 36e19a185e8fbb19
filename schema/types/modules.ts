// Modules, their versions and tags: the catalog queries and publishing.
import { assertCan } from '../../server/auth/ability';
import type { ModuleTag, ModuleTagEvent } from '../../server/db/tables/modules';
import { AtelierError } from '../../server/errors';
import { type PublishResult, publishModuleVersion } from '../../server/modules/publish';
import {
  listModules,
  moduleByName,
  modulesByIds,
  moduleVersionsByIds,
  runsUsingVersion,
  tagEventsOfModules,
  taggedOrNumberedVersion,
  tagsOfModules,
  usageOfVersions,
  type VersionUsage,
  versionsOfModules,
} from '../../server/modules/queries';
import { parseModuleRef } from '../../server/modules/ref';
import { storedSource } from '../../server/modules/source';
import { deprecateModuleVersion, rollbackModuleTag, setModuleTag, type TagMove } from '../../server/modules/tags';
import { ownersOfNamespaces } from '../../server/teams/queries';
import type { ModuleTestResult } from '../../server/vocabulary';
import { guard } from '../auth';
import { builder } from '../builder';
import type { Context } from '../context';
import { groupLoader, sharedLoader } from '../loaders';
import { NodeRef } from '../node';
import { IdentityRef } from './identity';
import { RunRef } from './runs';
import { TeamRef } from './teams';

/** Modules and module versions by id, each loaded once per request however many fields name it. */
export const ModuleVersionRef = builder.loadableObjectRef('ModuleVersion', {
  load: (ids: string[], ctx: Context) => moduleVersionsByIds(ctx.services.db, ids),
  sort: (v) => v.id,
});
export const ModuleRef = builder.loadableObjectRef('Module', {
  load: (ids: string[], ctx: Context) => modulesByIds(ctx.services.db, ids),
  sort: (m) => m.id,
});
export const ModuleTagRef = builder.objectRef<ModuleTag>('ModuleTag');

// Loaders several fields share: a module's versions (versions, latestVersion, usage), its tags (Module.tags,
// ModuleVersion.tags), a version's usage (ModuleVersion.usage, Module.usage).
const versionsOf = groupLoader(
  (ids, ctx) => versionsOfModules(ctx.services.db, ids),
  (v) => v.moduleId,
);
const tagsOf = groupLoader(
  (ids, ctx) => tagsOfModules(ctx.services.db, ids),
  (t) => t.moduleId,
);
const tagEventsOf = groupLoader(
  (ids, ctx) => tagEventsOfModules(ctx.services.db, ids),
  (e) => e.moduleId,
);
const usageOf = sharedLoader<string, VersionUsage>(async (ids, ctx) => {
  const usage = await usageOfVersions(ctx.services.db, ids);
  return ids.map((id) => usage.get(id) ?? { runs: 0, lastUsedAt: null });
});

const UsageRef = builder.objectRef<VersionUsage>('ModuleUsage').implement({
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
    from: t.field({ type: ModuleVersionRef, nullable: true, resolve: (e) => e.fromVersionId }),
    to: t.field({ type: ModuleVersionRef, resolve: (e) => e.toVersionId }),
    movedBy: t.field({ type: IdentityRef, nullable: true, resolve: (e) => e.movedBy }),
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
      resolve: async (m, args, ctx) => (await versionsOf(ctx).load(m.id)).slice(0, Math.min(Math.max(args.limit ?? 20, 1), 200)),
    }),
    tags: t.field({
      type: [ModuleTagRef],
      resolve: (m, _args, ctx) => tagsOf(ctx).load(m.id),
    }),
    latestVersion: t.field({
      type: ModuleVersionRef,
      nullable: true,
      description: 'The most recently published version (whatever the tags say).',
      resolve: async (m, _a, ctx) => (await versionsOf(ctx).load(m.id))[0] ?? null,
    }),
    owner: t.loadable({
      type: TeamRef,
      nullable: true,
      description: 'The team owning the namespace; null while none does (then only admins publish).',
      load: async (names: string[], ctx: Context) => {
        const owners = await ownersOfNamespaces(ctx.services.db, names);
        return names.map((n) => owners.get(n) ?? null);
      },
      resolve: (m) => m.namespace,
    }),
    usage: t.field({
      type: UsageRef,
      description: 'Runs that used any version of this module.',
      resolve: async (m, _a, ctx) => {
        const usages = await Promise.all((await versionsOf(ctx).load(m.id)).map((v) => usageOf(ctx).load(v.id)));
        const last = usages.map((u) => u.lastUsedAt?.getTime() ?? 0).reduce((a, b) => Math.max(a, b), 0);
        return { runs: usages.reduce((n, u) => n + u.runs, 0), lastUsedAt: last ? new Date(last) : null };
      },
    }),
    tagHistory: t.field({
      type: [TagEventRef],
      description: 'Moves of the module’s tags, newest first.',
      args: { tag: t.arg.string(), limit: t.arg.int({ defaultValue: 50 }) },
      resolve: async (m, args, ctx) =>
        (await tagEventsOf(ctx).load(m.id)).filter((e) => !args.tag || e.tag === args.tag).slice(0, Math.min(Math.max(args.limit ?? 50, 1), 500)),
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
    source: t.field({
      type: 'JSON',
      description: 'Where it was built from (repository, commit, branch, dirty); a repository is shown without credentials.',
      resolve: (v) => storedSource(v.source),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    module: t.field({ type: ModuleRef, resolve: (v) => v.moduleId }),
    ref: t.string({
      description: '`namespace/name@version`',
      resolve: async (v, _a, ctx) => {
        const m = await ModuleRef.getDataloader(ctx).load(v.moduleId);
        return `${m.namespace}/${m.name}@${v.version}`;
      },
    }),
    publishedBy: t.field({ type: IdentityRef, nullable: true, resolve: (v) => v.publishedBy }),
    tags: t.stringList({
      description: 'The tags pointing at this version now.',
      resolve: async (v, _a, ctx) => (await tagsOf(ctx).load(v.moduleId)).filter((tag) => tag.versionId === v.id).map((tag) => tag.tag),
    }),
    usage: t.field({ type: UsageRef, resolve: (v, _a, ctx) => usageOf(ctx).load(v.id) }),
    runs: t.field({
      type: [RunRef],
      description: 'The latest runs that had a task pinned to this version, newest first.',
      args: { limit: t.arg.int({ defaultValue: 10, description: '1 to 100.' }) },
      resolve: (v, args, ctx) => runsUsingVersion(ctx.services.db, v.id, Math.min(Math.max(args.limit ?? 10, 1), 100)),
    }),
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
    version: t.field({ type: ModuleVersionRef, resolve: (tag) => tag.versionId }),
  }),
});

builder.queryFields((t) => ({
  modules: t.field({
    type: [ModuleRef],
    description: 'The module catalog, by namespace and name.',
    args: { namespace: t.arg.string(), search: t.arg.string({ description: 'Part of the name or description.' }) },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Module', 'list modules');
      return listModules(ctx.services.db, { namespace: args.namespace, search: args.search });
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
      return moduleByName(ctx.services.db, namespace, name ?? '');
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
      const m = await moduleByName(ctx.services.db, namespace, name ?? '');
      return m ? taggedOrNumberedVersion(ctx.services.db, m.id, selector) : null;
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
        throw new AtelierError(
          'PAYLOAD_TOO_LARGE',
          `The artifact is ${file.size} bytes; the limit is ${ctx.services.config.maxUploadBytes} (ATELIER_MAX_UPLOAD_MB). Add large files to .atelierignore.`,
        );
      }
      const testResult = args.testResult
        ? { ...args.testResult, exitCode: args.testResult.exitCode ?? null, output: args.testResult.output.slice(-8000) }
        : undefined;
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
          maxUnpackedBytes: ctx.services.config.maxUnpackedBytes,
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
      setModuleTag(ctx.services.db, ctx.ability, ctx.identity, {
        module: args.module,
        tag: args.tag,
        version: args.version,
        reason: args.reason ?? undefined,
        force: args.force ?? false,
      }),
  }),
  rollbackModuleTag: t.field({
    type: TagMoveRef,
    description: 'Moves a tag back to the version it pointed at before its last move; again, to the one before that.',
    args: { module: t.arg.string({ required: true }), tag: t.arg.string({ required: true }), reason: t.arg.string(), force: t.arg.boolean() },
    resolve: (_root, args, ctx) =>
      rollbackModuleTag(ctx.services.db, ctx.ability, ctx.identity, {
        module: args.module,
        tag: args.tag,
        reason: args.reason ?? undefined,
        force: args.force ?? false,
      }),
  }),
  deprecateModuleVersion: t.field({
    type: ModuleVersionRef,
    description: 'Deprecates a version: runs that pin it keep working, but no tag moves to it without `force`. `deprecated: false` restores it.',
    args: {
      ref: t.arg.string({ required: true, description: '`namespace/name@version`' }),
      reason: t.arg.string(),
      deprecated: t.arg.boolean({ defaultValue: true }),
    },
    resolve: (_root, args, ctx) =>
      deprecateModuleVersion(ctx.services.db, ctx.ability, ctx.identity, {
        ref: args.ref,
        reason: args.reason ?? undefined,
        deprecated: args.deprecated ?? true,
      }),
  }),
}));
