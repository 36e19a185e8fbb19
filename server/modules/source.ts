// Recording where module content came from, without the credentials a remote URL may carry: every publish path
// (API, CLI, git hook) stores a source through `storedSource`, and reads show it through the same function, so
// rows written before this rule are shown without their credentials too.
import { eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { moduleVersions } from '../db/tables/modules';
import type { ModuleSource } from '../vocabulary';

/** Query parameters that carry credentials (token, access_token, private_token, password, api_key, sig, …). */
const credentialParam = /token|passw|pwd|secret|key|auth|sig|credential|session|cookie|bearer/i;

/** The URL without user, password and credential-like query parameters; scp-like `user:password@host:path` loses its user and password. */
export function withoutCredentials(url: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    // scp-like `[user[:password]@]host:path` (or a local path): a password-bearing user part goes; `git@` stays.
    const m = /^([^@/]*)@(.*)$/s.exec(url);
    return m && m[1]!.includes(':') ? m[2]! : url;
  }
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    for (const name of [...u.searchParams.keys()]) if (credentialParam.test(name)) u.searchParams.delete(name);
    if (!u.searchParams.size) u.search = '';
    return u.toString();
  } catch {
    // Not a URL we can parse: keep only what follows the last `@` of its authority.
    return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/]*@/i, '$1');
  }
}

/** A source as stored and shown: its repository without credentials. */
export function storedSource(source: ModuleSource | null | undefined): ModuleSource {
  if (!source) return {};
  return typeof source.repository === 'string' ? { ...source, repository: withoutCredentials(source.repository) } : source;
}

/**
 * Rewrites stored sources that still carry credentials (rows published before sources were stored through
 * `storedSource`): reads already hid them, and after this the database no longer holds them either. Runs at
 * start, after the migrations; returns how many rows it rewrote. Idempotent, and cheap once done (it reads only
 * sources with userinfo or a query string).
 */
export async function scrubStoredSources(db: Db): Promise<number> {
  const rows = await db
    .select({ id: moduleVersions.id, source: moduleVersions.source })
    .from(moduleVersions)
    .where(sql`${moduleVersions.source}->>'repository' ~ '[@?]'`);
  let scrubbed = 0;
  for (const row of rows) {
    const clean = storedSource(row.source);
    if (clean.repository === row.source.repository) continue;
    await db.update(moduleVersions).set({ source: clean }).where(eq(moduleVersions.id, row.id));
    scrubbed += 1;
  }
  return scrubbed;
}
