// Modules, their versions and tags: the catalog queries and publishing.
import { and, asc, eq } from 'drizzle-orm';
import { assertCan } from '../../server/auth/ability';
import { moduleTags, moduleVersions, modules, type Module, type ModuleVersion } from '../../server/db/tables/modules';
import { AtelierError } from '../../server/errors';
import { parseModuleRef } from '../../server/orchestrator/plan';
import { publishModuleVersion } from '../../server/modules/publish';
import { builder } from '../builder';
import { IdentityRef } from './identity';

interface TagRow {
  moduleId: string;
  tag: string;
  versionId: string;
  updatedAt: Date;
}

export const ModuleVersionRef = builder.objectRef<ModuleVersion>('ModuleVersion');
export const ModuleRef = builder.objectRef<Module>('Module');
const ModuleTagRef = builder.objectRef<TagRow>('ModuleTag');

ModuleRef.implement({
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
  }),
});

ModuleVersionRef.implement({
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
    description: 'Every module, by namespace and name.',
    args: { namespace: t.arg.string() },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Module', 'list modules');
      return ctx.services.db
        .select()
        .from(modules)
        .where(args.namespace ? eq(modules.namespace, args.namespace) : undefined)
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

const PublishResult = builder
  .objectRef<{ version: ModuleVersion; created: boolean }>('PublishModuleVersionResult')
  .implement({
    fields: (t) => ({
      version: t.field({ type: ModuleVersionRef, resolve: (r) => r.version }),
      created: t.exposeBoolean('created', { description: 'False when identical content was already published (nothing was uploaded twice).' }),
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

builder.mutationFields((t) => ({
  publishModuleVersion: t.field({
    type: PublishResult,
    description: 'Publishes a module from an uploaded tar.gz archive holding `atelier.module.yaml` at its root, and moves the given tags (default `latest`) to it.',
    args: {
      artifact: t.arg({ type: 'File', required: true }),
      digest: t.arg.string({ description: 'The archive digest the client computed; the upload is refused if it differs.' }),
      source: t.arg({ type: ModuleSourceInput }),
      tags: t.arg.stringList(),
    },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'publish', 'Module', 'publish modules');
      const file = args.artifact;
      if (file.size > ctx.services.config.maxUploadBytes) {
        throw new AtelierError('PAYLOAD_TOO_LARGE', `The artifact is ${file.size} bytes; the limit is ${ctx.services.config.maxUploadBytes} (ATELIER_MAX_UPLOAD_MB). Add large files to .atelierignore.`);
      }
      const bytes = new Uint8Array(await file.arrayBuffer());
      return publishModuleVersion(
        ctx.services.db,
        ctx.services.store,
        { archive: bytes, expectedDigest: args.digest ?? undefined, source: args.source ?? undefined, tags: args.tags ?? undefined },
        ctx.identity,
      );
    },
  }),
}));
