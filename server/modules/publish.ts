// Publishing a module version from an uploaded archive: verify, read its manifest, store the bytes by digest,
// record the immutable version and move its tags, all or nothing. Same digest twice returns the existing version.

import { and, eq, sql } from 'drizzle-orm';
import { readArchiveFile } from '../artifacts/archive';
import type { ObjectStore } from '../artifacts/store';
import { sha256 } from '../artifacts/store';
import type { AppAbility } from '../auth/ability';
import { type Db, queryRows, type Tx } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { type ModuleVersion, modules, moduleTags, moduleVersions } from '../db/tables/modules';
import { AtelierError, notFound } from '../errors';
import { crashPoint } from '../lifecycle/crash-hook';
import { assertMayWriteNamespace } from '../teams/teams';
import { MANIFEST_FILE, type ModuleSource, type ModuleTestResult } from '../vocabulary';
import { MAX_MANIFEST_BYTES, readManifest } from './manifest';
import { storedSource } from './source';
import { checkTag, moveTags } from './tags';

export interface PublishInput {
  /** The tar.gz archive. Without it, `expectedDigest` must name content already published: tags move, nothing uploads. */
  archive?: Uint8Array;
  /** When given with an archive, the archive must hash to it (the client's own computation). */
  expectedDigest?: string;
  source?: ModuleSource;
  /** Tags to move. Default: `latestAlpha`, and `latest` too while the module has no `latest` yet. */
  tags?: string[];
  testResult?: ModuleTestResult;
  /** Move tags even onto a deprecated version. */
  force?: boolean;
  /** Asked for each tag that would move from `current`: a reason to leave it where it is, or null to move it. */
  keepTag?: (tag: string, current: ModuleVersion) => Promise<string | null>;
  /** The server's limit on what the archive may inflate to (its config's `maxUnpackedBytes`); not the caller's to choose. */
  maxUnpackedBytes?: number;
}

export interface PublishResult {
  version: ModuleVersion;
  created: boolean;
  /** The tags this publish moved (a failed test moves none). */
  movedTags: string[];
  /** Tags `keepTag` left where they were, and why. */
  keptTags: { tag: string; reason: string }[];
}

export const DEFAULT_PUSH_TAG = 'latestAlpha';

export async function publishModuleVersion(
  db: Db,
  store: ObjectStore,
  ability: AppAbility,
  input: PublishInput,
  identity: Identity | null,
): Promise<PublishResult> {
  for (const tag of input.tags ?? []) checkTag(tag);
  if (!input.archive) return republishByDigest(db, ability, input, identity);
  const digest = sha256(input.archive);
  if (input.expectedDigest && input.expectedDigest !== digest) {
    throw new AtelierError('DIGEST_MISMATCH', `The uploaded archive hashes to ${digest}, not ${input.expectedDigest}; the upload was corrupted, push again.`);
  }
  let manifestText: string | null;
  try {
    manifestText = await readArchiveFile(input.archive, MANIFEST_FILE, MAX_MANIFEST_BYTES, input.maxUnpackedBytes);
  } catch (error) {
    if (error instanceof AtelierError) throw error; // a bomb: PAYLOAD_TOO_LARGE, as it inflated
    throw new AtelierError('INVALID_MANIFEST', `The upload is not a readable tar.gz module archive: ${(error as Error).message}`);
  }
  if (manifestText === null)
    throw new AtelierError(
      'INVALID_MANIFEST',
      `The archive has no ${MANIFEST_FILE} at its root; run \`npx atelier module push DIR\` on the module's directory.`,
    );
  const manifest = await readManifest(manifestText, digest);
  await assertMayWriteNamespace(db, ability, manifest.namespace);

  // The object first, then the row that names it: a crash between leaves an object nothing names yet (the same
  // publish again records it), never a version whose archive is missing.
  await store.put(input.archive);
  crashPoint('module-object-stored');
  return db.transaction(async (tx) => {
    await tx
      .insert(modules)
      .values({ namespace: manifest.namespace, name: manifest.name, description: manifest.description ?? '' })
      .onConflictDoNothing();
    const [mod] = await tx
      .select()
      .from(modules)
      .where(and(eq(modules.namespace, manifest.namespace), eq(modules.name, manifest.name)))
      .for('update');
    const [existing] = await tx
      .select()
      .from(moduleVersions)
      .where(and(eq(moduleVersions.moduleId, mod!.id), eq(moduleVersions.digest, digest)));
    if (existing) return settle(tx, mod!.id, existing, false, input, identity);
    const version = manifest.version ?? (await nextVersion(tx, mod!.id));
    const [clash] = await tx
      .select({ id: moduleVersions.id })
      .from(moduleVersions)
      .where(and(eq(moduleVersions.moduleId, mod!.id), eq(moduleVersions.version, version)));
    if (clash) {
      throw new AtelierError(
        'CONFLICT',
        `${manifest.namespace}/${manifest.name}@${version} already exists with different content; versions are immutable, so bump "version" in ${MANIFEST_FILE} (or remove it to number versions automatically).`,
      );
    }
    const [created] = await tx
      .insert(moduleVersions)
      .values({
        moduleId: mod!.id,
        version,
        digest,
        sizeBytes: input.archive!.byteLength,
        manifest,
        source: storedSource(input.source),
        publishedBy: identity?.id ?? null,
        testResult: input.testResult ?? null,
      })
      .returning();
    if (manifest.description !== undefined) await tx.update(modules).set({ description: manifest.description }).where(eq(modules.id, mod!.id));
    return settle(tx, mod!.id, created!, true, input, identity);
  });
}

/** Identical content pushed again: no upload, only the tags (and a new test result) change. */
async function republishByDigest(db: Db, ability: AppAbility, input: PublishInput, identity: Identity | null): Promise<PublishResult> {
  if (!input.expectedDigest) throw new AtelierError('BAD_USER_INPUT', 'Pass the archive (artifact), or the digest of content already published.');
  const [row] = await db
    .select({ version: moduleVersions, namespace: modules.namespace })
    .from(moduleVersions)
    .innerJoin(modules, eq(modules.id, moduleVersions.moduleId))
    .where(eq(moduleVersions.digest, input.expectedDigest))
    .limit(1);
  if (!row) throw notFound(`No module version has digest ${input.expectedDigest}; upload the archive.`);
  await assertMayWriteNamespace(db, ability, row.namespace);
  return db.transaction(async (tx) => {
    await tx.select({ id: modules.id }).from(modules).where(eq(modules.id, row.version.moduleId)).for('update');
    return settle(tx, row.version.moduleId, row.version, false, input, identity);
  });
}

/** Records a new test result and moves the tags, unless the test failed. */
async function settle(
  tx: Tx,
  moduleId: string,
  version: ModuleVersion,
  created: boolean,
  input: PublishInput,
  identity: Identity | null,
): Promise<PublishResult> {
  if (!created && input.testResult) {
    [version] = (await tx.update(moduleVersions).set({ testResult: input.testResult }).where(eq(moduleVersions.id, version.id)).returning()) as [ModuleVersion];
  }
  if (input.testResult && !input.testResult.passed) return { version, created, movedTags: [], keptTags: [] };
  let tags = input.tags;
  if (!tags?.length) {
    const [latest] = await tx
      .select({ tag: moduleTags.tag })
      .from(moduleTags)
      .where(and(eq(moduleTags.moduleId, moduleId), eq(moduleTags.tag, 'latest')));
    // A module's first version is also its `latest`, so a workflow can use it without a promotion step.
    tags = latest ? [DEFAULT_PUSH_TAG] : [DEFAULT_PUSH_TAG, 'latest'];
  }
  const keptTags: PublishResult['keptTags'] = [];
  if (input.keepTag) {
    const moving: string[] = [];
    for (const tag of tags) {
      const [current] = await tx
        .select({ version: moduleVersions })
        .from(moduleTags)
        .innerJoin(moduleVersions, eq(moduleVersions.id, moduleTags.versionId))
        .where(and(eq(moduleTags.moduleId, moduleId), eq(moduleTags.tag, tag)));
      const reason = current && current.version.id !== version.id ? await input.keepTag(tag, current.version) : null;
      if (reason) keptTags.push({ tag, reason });
      else moving.push(tag);
    }
    tags = moving;
  }
  await moveTags(tx, moduleId, version, tags, identity, created ? 'published' : 'republished identical content', { force: input.force });
  return { version, created, movedTags: tags, keptTags };
}

async function nextVersion(tx: Tx, moduleId: string): Promise<string> {
  const [row] = await queryRows<{ next: number }>(
    tx,
    sql`select coalesce(max(version::int), 0) + 1 as next from ${moduleVersions}
        where module_id = ${moduleId} and version ~ '^[0-9]{1,9}$'`,
  );
  return String(row?.next ?? 1);
}
