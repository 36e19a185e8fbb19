// Invalidating cache entries: of a module (`ns/name`), of one of its versions (`ns/name@version`), or one by key.
// A module's entries belong to its namespace: only the namespace's owning team (its writers) and admins drop them.
// By key, only an entry the caller may read (any other answers like a key with no entry: 0) and whose module's
// namespace they may write. Every decision is audited.
import { eq } from 'drizzle-orm';
import { AuditedDenial, audit, audited } from '../audit/audit';
import { type AppAbility, namespaceSubject } from '../auth/ability';
import type { Db } from '../db/client';
import { cacheEntries } from '../db/tables/cache';
import { runs } from '../db/tables/runs';
import { badInput } from '../errors';
import { moduleVersionIdOf } from '../modules/queries';
import { loadNamespaceSubject } from '../teams/teams';
import { type CacheReader, readRule } from './access';
import type { TaskCache } from './store';

export interface InvalidateRequest {
  /** `ns/name` or `ns/name@version`. */
  module?: string;
  key?: string;
}

const writersRule = 'cache entries are invalidated by their module namespace’s team and admins only';

/** Drops the entries asked for; returns how many. */
export function invalidateCache(db: Db, cache: TaskCache, ability: AppAbility, reader: CacheReader, which: InvalidateRequest): Promise<number> {
  return audited(db, async () => {
    if (!which.module === !which.key) throw badInput('Pass exactly one of module (ns/name or ns/name@version) and key.');
    const subject = which.key ? `cache:key:${which.key}` : `cache:module:${which.module}`;
    const refuse = (message: string, details: Record<string, unknown> = {}) =>
      new AuditedDenial({ identity: reader.identity, action: 'cache.invalidate', decision: 'deny', subject, rule: writersRule, details }, message);
    if (!ability.can('publish', 'Module')) throw refuse('You may not invalidate cache entries; ask an admin for a role that allows "publish" on Module.');
    const mayWrite = async (namespace: string) => {
      const ns = await loadNamespaceSubject(db, namespace);
      if (ability.can('publish', namespaceSubject(ns))) return;
      throw refuse(
        ns.team
          ? `Only members of team "${ns.team}" (and admins) may invalidate cache entries of namespace "${namespace}"; ask a maintainer of "${ns.team}" to add you: \`npx atelier team add ${ns.team} NAME --role member\`.`
          : `Namespace "${namespace}" is not owned by any team, so only admins may invalidate its cache entries.`,
        { namespace },
      );
    };
    const dropped = async (which: { module?: string; moduleVersionId?: string; key?: string }) => {
      const n = await cache.invalidate(db, which);
      await audit(db, { identity: reader.identity, action: 'cache.invalidate', decision: 'allow', subject, rule: writersRule, details: { dropped: n } });
      return n;
    };

    if (which.key) {
      const [found] = await db
        .select({ module: cacheEntries.module, run: runs })
        .from(cacheEntries)
        .innerJoin(runs, eq(runs.id, cacheEntries.sourceRunId))
        .where(eq(cacheEntries.key, which.key));
      if (!found) return 0;
      if (!reader.mayRead(found.run)) {
        // Answered like a key with no entry; the attempt is still on record.
        await audit(db, {
          identity: reader.identity,
          action: 'cache.invalidate',
          decision: 'deny',
          subject,
          rule: readRule,
          details: { domain: found.run.domain },
        });
        return 0;
      }
      await mayWrite(found.module.split('/')[0]!);
      return dropped({ key: which.key });
    }
    const m = /^([^/@\s]+)\/([^/@\s]+)(?:@(\S+))?$/.exec(which.module!);
    if (!m) throw badInput(`"${which.module}" is not a module reference; use ns/name or ns/name@version.`);
    const [, namespace, name, version] = m as unknown as [string, string, string, string | undefined];
    await mayWrite(namespace);
    if (!version) return dropped({ module: `${namespace}/${name}` });
    const moduleVersionId = await moduleVersionIdOf(db, namespace, name, version);
    if (!moduleVersionId) throw badInput(`${namespace}/${name} has no version ${version}.`);
    return dropped({ moduleVersionId });
  });
}
