// Publishing a module version from an uploaded archive: verify, read its manifest, store the bytes by digest,
// record the immutable version and move its tags, all or nothing. Same digest twice returns the existing version.
import { and, desc, eq, sql } from 'drizzle-orm';
import type { ObjectStore } from '../artifacts/store';
import { readArchiveFile } from '../artifacts/archive';
import { sha256 } from '../artifacts/store';
import { queryRows, type Db, type Tx } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { moduleTagEvents, moduleTags, moduleVersions, modules, type ModuleSource, type ModuleVersion } from '../db/tables/modules';
import { AtelierError } from '../errors';
import { MANIFEST_FILE, parseManifest } from './manifest';

export interface PublishInput {
  archive: Uint8Array;
  /** When given, the archive must hash to it (the client's own computation). */
  expectedDigest?: string;
  source?: ModuleSource;
  tags?: string[];
}

export interface PublishResult {
  version: ModuleVersion;
  created: boolean;
}

const tagRe = /^[A-Za-z][A-Za-z0-9._-]{0,63}$/;

export async function publishModuleVersion(db: Db, store: ObjectStore, input: PublishInput, identity: Identity | null): Promise<PublishResult> {
  const digest = sha256(input.archive);
  if (input.expectedDigest && input.expectedDigest !== digest) {
    throw new AtelierError('DIGEST_MISMATCH', `The uploaded archive hashes to ${digest}, not ${input.expectedDigest}; the upload was corrupted, push again.`);
  }
  let manifestText: string | null;
  try {
    manifestText = await readArchiveFile(input.archive, MANIFEST_FILE);
  } catch (error) {
    throw new AtelierError('INVALID_MANIFEST', `The upload is not a readable tar.gz module archive: ${(error as Error).message}`);
  }
  if (manifestText === null) throw new AtelierError('INVALID_MANIFEST', `The archive has no ${MANIFEST_FILE} at its root; run \`npx atelier module push DIR\` on the module's directory.`);
  const manifest = parseManifest(manifestText);
  const tags = input.tags ?? ['latest'];
  for (const tag of tags) {
    if (!tagRe.test(tag)) throw new AtelierError('BAD_USER_INPUT', `"${tag}" is not a valid tag: use letters, digits, ".", "_" or "-", starting with a letter.`);
  }

  await store.put(input.archive);
  return db.transaction(async (tx) => {
    await tx.insert(modules).values({ namespace: manifest.namespace, name: manifest.name, description: manifest.description ?? '' }).onConflictDoNothing();
    const [mod] = await tx
      .select()
      .from(modules)
      .where(and(eq(modules.namespace, manifest.namespace), eq(modules.name, manifest.name)))
      .for('update');
    const [existing] = await tx.select().from(moduleVersions).where(and(eq(moduleVersions.moduleId, mod!.id), eq(moduleVersions.digest, digest)));
    if (existing) {
      await moveTags(tx, mod!.id, existing.id, tags, identity, 'republished identical content');
      return { version: existing, created: false };
    }
    const version = manifest.version ?? (await nextVersion(tx, mod!.id));
    const [clash] = await tx.select({ id: moduleVersions.id }).from(moduleVersions).where(and(eq(moduleVersions.moduleId, mod!.id), eq(moduleVersions.version, version)));
    if (clash) {
      throw new AtelierError('CONFLICT', `${manifest.namespace}/${manifest.name}@${version} already exists with different content; versions are immutable, so bump "version" in ${MANIFEST_FILE} (or remove it to number versions automatically).`);
    }
    const [created] = await tx
      .insert(moduleVersions)
      .values({ moduleId: mod!.id, version, digest, sizeBytes: input.archive.byteLength, manifest, source: input.source ?? {}, publishedBy: identity?.id ?? null })
      .returning();
    if (manifest.description !== undefined) await tx.update(modules).set({ description: manifest.description }).where(eq(modules.id, mod!.id));
    await moveTags(tx, mod!.id, created!.id, tags, identity, 'published');
    return { version: created!, created: true };
  });
}

async function nextVersion(tx: Tx, moduleId: string): Promise<string> {
  const [row] = await queryRows<{ next: number }>(
    tx,
    sql`select coalesce(max(version::int), 0) + 1 as next from ${moduleVersions}
        where module_id = ${moduleId} and version ~ '^[0-9]{1,9}$'`,
  );
  return String(row?.next ?? 1);
}

/** Points tags at a version, recording each move in the tag history. */
export async function moveTags(tx: Tx, moduleId: string, versionId: string, tags: string[], identity: Identity | null, reason: string) {
  for (const tag of tags) {
    const [current] = await tx.select().from(moduleTags).where(and(eq(moduleTags.moduleId, moduleId), eq(moduleTags.tag, tag)));
    if (current?.versionId === versionId) continue;
    await tx
      .insert(moduleTags)
      .values({ moduleId, tag, versionId, updatedBy: identity?.id ?? null, updatedAt: new Date() })
      .onConflictDoUpdate({ target: [moduleTags.moduleId, moduleTags.tag], set: { versionId, updatedBy: identity?.id ?? null, updatedAt: new Date() } });
    await tx.insert(moduleTagEvents).values({ moduleId, tag, fromVersionId: current?.versionId ?? null, toVersionId: versionId, movedBy: identity?.id ?? null, reason });
  }
}

export async function latestVersions(db: Db, moduleId: string, limit = 20) {
  return db.select().from(moduleVersions).where(eq(moduleVersions.moduleId, moduleId)).orderBy(desc(moduleVersions.createdAt)).limit(limit);
}
