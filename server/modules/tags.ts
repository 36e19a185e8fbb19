// Channel tags: movable pointers to module versions with a full history of every move, promotion by
// `setModuleTag`, undo by `rollbackModuleTag`, and deprecation that keeps tags off a version.
import { and, desc, eq } from 'drizzle-orm';
import type { AppAbility } from '../auth/ability';
import type { Db, Tx } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { type Module, type ModuleVersion, modules, moduleTagEvents, moduleTags, moduleVersions } from '../db/tables/modules';
import { AtelierError, badInput, notFound } from '../errors';
import { assertMayWriteNamespace } from '../teams/teams';
import { moduleByName } from './queries';
import { parseModuleRef } from './ref';

const tagRe = /^[A-Za-z][A-Za-z0-9._-]{0,63}$/;

export function checkTag(tag: string): void {
  if (!tagRe.test(tag)) throw badInput(`"${tag}" is not a valid tag: use letters, digits, ".", "_" or "-", starting with a letter.`);
}

/** Points tags at a version, recording each move in the tag history. A deprecated version needs `force`. */
export async function moveTags(
  tx: Tx,
  moduleId: string,
  version: ModuleVersion,
  tags: string[],
  identity: Identity | null,
  reason: string,
  options: { force?: boolean; action?: 'move' | 'rollback' } = {},
): Promise<void> {
  if (version.deprecatedAt && !options.force) {
    throw new AtelierError(
      'CONFLICT',
      `Version ${version.version} is deprecated${version.deprecationReason ? ` (${version.deprecationReason})` : ''}; no tag moves to it unless forced (--force).`,
    );
  }
  for (const tag of tags) {
    const [current] = await tx
      .select()
      .from(moduleTags)
      .where(and(eq(moduleTags.moduleId, moduleId), eq(moduleTags.tag, tag)));
    if (current?.versionId === version.id) continue;
    const values = { versionId: version.id, updatedBy: identity?.id ?? null, updatedAt: new Date() };
    await tx
      .insert(moduleTags)
      .values({ moduleId, tag, ...values })
      .onConflictDoUpdate({ target: [moduleTags.moduleId, moduleTags.tag], set: values });
    await tx.insert(moduleTagEvents).values({
      moduleId,
      tag,
      fromVersionId: current?.versionId ?? null,
      toVersionId: version.id,
      movedBy: identity?.id ?? null,
      action: options.action ?? 'move',
      reason,
    });
  }
}

/** The module named `namespace/name`, locked for the rest of the transaction so tag moves are serialised. */
async function lockModule(tx: Tx, fullName: string): Promise<Module> {
  const { namespace, name } = parseModuleRef(fullName);
  if (!name || fullName.includes('@')) throw badInput(`"${fullName}" is not a module name; use namespace/name.`);
  const [mod] = await tx
    .select()
    .from(modules)
    .where(and(eq(modules.namespace, namespace), eq(modules.name, name)))
    .for('update');
  if (!mod) throw notFound(`No module ${fullName}; publish it first with \`npx atelier module push DIR\`.`);
  return mod;
}

/** `namespace/name@version-or-tag` to its version; NOT_FOUND names what exists. */
export async function findVersion(db: Db | Tx, ref: string): Promise<{ module: Module; version: ModuleVersion }> {
  const { namespace, name, selector } = parseModuleRef(ref);
  if (!name) throw badInput(`"${ref}" is not a module reference; use namespace/name@version.`);
  const mod = await moduleByName(db, namespace, name);
  if (!mod) throw notFound(`No module ${namespace}/${name}; publish it first with \`npx atelier module push DIR\`.`);
  const [byVersion] = await db
    .select()
    .from(moduleVersions)
    .where(and(eq(moduleVersions.moduleId, mod.id), eq(moduleVersions.version, selector)));
  if (byVersion) return { module: mod, version: byVersion };
  const [byTag] = await db
    .select({ version: moduleVersions })
    .from(moduleTags)
    .innerJoin(moduleVersions, eq(moduleVersions.id, moduleTags.versionId))
    .where(and(eq(moduleTags.moduleId, mod.id), eq(moduleTags.tag, selector)));
  if (byTag) return { module: mod, version: byTag.version };
  throw notFound(`${namespace}/${name} has no version or tag "${selector}"; see them with \`npx atelier module show ${namespace}/${name}\`.`);
}

export interface TagMove {
  module: Module;
  tag: string;
  version: ModuleVersion;
  previous: ModuleVersion | null;
}

/** Promotes: points `tag` of the module at `version` (a version number or another tag). */
export async function setModuleTag(
  db: Db,
  ability: AppAbility,
  identity: Identity,
  input: { module: string; tag: string; version: string; reason?: string; force?: boolean },
): Promise<TagMove> {
  checkTag(input.tag);
  return db.transaction(async (tx) => {
    const mod = await lockModule(tx, input.module);
    await assertMayWriteNamespace(tx, ability, mod.namespace);
    const { version } = await findVersion(tx, `${mod.namespace}/${mod.name}@${input.version}`);
    const previous = await taggedVersion(tx, mod.id, input.tag);
    await moveTags(tx, mod.id, version, [input.tag], identity, input.reason ?? 'promoted', { force: input.force });
    return { module: mod, tag: input.tag, version, previous };
  });
}

/**
 * Where a rollback of `tag` would move it, or why it may not: the caller must write the module's namespace, and the
 * tag must have an earlier version in its history. `rollbackModuleTag` acts on it; `ModuleTag.viewerCan` only asks.
 */
export async function rollbackTarget(db: Db | Tx, ability: AppAbility, mod: Module, tag: string): Promise<{ previous: ModuleVersion; target: string }> {
  await assertMayWriteNamespace(db, ability, mod.namespace);
  const previous = await taggedVersion(db, mod.id, tag);
  if (!previous) throw notFound(`${mod.namespace}/${mod.name} has no tag "${tag}".`);
  const history = await db
    .select()
    .from(moduleTagEvents)
    .where(and(eq(moduleTagEvents.moduleId, mod.id), eq(moduleTagEvents.tag, tag)))
    .orderBy(desc(moduleTagEvents.createdAt), desc(moduleTagEvents.id));
  let undone = 0;
  for (const event of history) {
    if (event.action === 'rollback') undone++;
    else if (undone > 0) undone--;
    else if (event.fromVersionId) return { previous, target: event.fromVersionId };
    else break;
  }
  throw new AtelierError('CONFLICT', `Tag "${tag}" of ${mod.namespace}/${mod.name} has no earlier version to roll back to.`);
}

/**
 * Moves a tag back to the version it pointed at before its last move. Rollbacks stack: rolling back twice
 * undoes the last two moves, as an undo history would, instead of flipping between two versions.
 */
export async function rollbackModuleTag(
  db: Db,
  ability: AppAbility,
  identity: Identity,
  input: { module: string; tag: string; reason?: string; force?: boolean },
): Promise<TagMove> {
  checkTag(input.tag);
  return db.transaction(async (tx) => {
    const mod = await lockModule(tx, input.module);
    const { previous, target } = await rollbackTarget(tx, ability, mod, input.tag);
    const [version] = await tx.select().from(moduleVersions).where(eq(moduleVersions.id, target));
    await moveTags(tx, mod.id, version!, [input.tag], identity, input.reason ?? `rolled back from ${previous.version}`, {
      force: input.force,
      action: 'rollback',
    });
    return { module: mod, tag: input.tag, version: version!, previous };
  });
}

/** Deprecates (or, with `deprecated: false`, restores) a version. Pinned runs keep working either way. */
export async function deprecateModuleVersion(
  db: Db,
  ability: AppAbility,
  identity: Identity,
  input: { ref: string; reason?: string; deprecated: boolean },
): Promise<ModuleVersion> {
  if (!input.ref.includes('@')) throw badInput(`Name the version: ${input.ref}@VERSION.`);
  return db.transaction(async (tx) => {
    const { module: mod, version } = await findVersion(tx, input.ref);
    await assertMayWriteNamespace(tx, ability, mod.namespace);
    const [updated] = await tx
      .update(moduleVersions)
      .set(
        input.deprecated
          ? { deprecatedAt: new Date(), deprecatedBy: identity.id, deprecationReason: input.reason ?? null }
          : { deprecatedAt: null, deprecatedBy: null, deprecationReason: null },
      )
      .where(eq(moduleVersions.id, version.id))
      .returning();
    return updated!;
  });
}

async function taggedVersion(tx: Db | Tx, moduleId: string, tag: string): Promise<ModuleVersion | null> {
  const [row] = await tx
    .select({ version: moduleVersions })
    .from(moduleTags)
    .innerJoin(moduleVersions, eq(moduleVersions.id, moduleTags.versionId))
    .where(and(eq(moduleTags.moduleId, moduleId), eq(moduleTags.tag, tag)));
  return row?.version ?? null;
}
