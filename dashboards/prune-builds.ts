// Which versions of the dashboards' build a rebuild removes (ensure-built.ts calls this after each switch, never a
// request). A tab opened on an older build loads its lazy chunks, styles and fonts later, from that build's hashed
// names, which the control plane still answers while the build is here (server/http/static.ts): so a version stays
// while it is one of the newest few, or was replaced less than a grace period ago (a day: a tab left open over an
// upgrade, overnight). The version in use always stays, and so does one a build in progress is writing.
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { alive } from './build-lock';
import { builtVersions, parseVersion } from './build-versions';

export interface Retention {
  /** The newest builds kept whatever their age, the one in use among them. */
  builds: number;
  /** A build replaced less than this long ago is kept (its folder's mtime is when it was replaced). */
  graceMs: number;
}

export const defaultRetention: Retention = { builds: 3, graceMs: 24 * 3600_000 };

/** Longer than any build takes: a partial version this old is left over, whoever has its pid now. */
const BUILD_MAX_MS = 3600_000;

/** Removes the versions in `versions` (the dist.builds folder) that no rule keeps; `keep`: those in use. */
export async function pruneBuilds(versions: string, keep: (string | undefined)[], retain: Partial<Retention> = {}): Promise<void> {
  const { builds, graceMs } = { ...defaultRetention, ...retain };
  const names = await readdir(versions);
  const now = Date.now();
  const remove = (name: string) => rm(path.join(versions, name), { recursive: true, force: true });
  for (const name of names) {
    const v = parseVersion(name);
    // a name no builder made is left alone; one being built or switched to stays while its builder runs
    if (!v || v.state === 'built' || keep.includes(name)) continue;
    if (!alive(v.pid) || now - v.startedMs > BUILD_MAX_MS) await remove(name);
  }
  for (const [newest, v] of builtVersions(names).entries()) {
    if (newest < builds || keep.includes(v.name)) continue;
    const replaced = (await stat(path.join(versions, v.name)).catch(() => null))?.mtimeMs;
    if (replaced !== undefined && now - replaced >= graceMs) await remove(v.name);
  }
}
