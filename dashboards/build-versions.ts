// The versions of the dashboards' build in dashboards/dist.builds/: ensure-built.ts writes them and prunes them, the
// control plane (server/http/static.ts) answers an asset the build in use lacks from the older ones. Both read the
// names here, so what counts as a whole build is decided in one place.

/** The folder beside the `dist` link that holds the versions. */
export const versionsDir = 'dist.builds';

/**
 * A version's name says when its build began and which process built it, so what a builder left behind is known
 * as such once that process is gone. `partial`: being built (never served); `link`: the new `dist` link before its
 * rename; `before`: a dist/ directory of a checkout from before versions, moved in.
 */
export interface Version {
  name: string;
  startedMs: number;
  pid: number;
  state: 'built' | 'partial' | 'link';
}

const pattern = /^(\d+)-(\d+)-[0-9a-f]+(?:\.(before|partial|link))?$/;

/** The name of a new version (`${name}.partial` while it is built). */
export function newVersionName(random: string, now = Date.now(), pid = process.pid): string {
  return `${now}-${pid}-${random}`;
}

/** What a name in dist.builds/ is; undefined for a name no builder made. */
export function parseVersion(name: string): Version | undefined {
  const m = pattern.exec(name);
  if (!m) return undefined;
  const state = m[3] === 'partial' || m[3] === 'link' ? m[3] : 'built';
  return { name, startedMs: Number(m[1]), pid: Number(m[2]), state };
}

/** The whole builds among these names, newest first. */
export function builtVersions(names: string[]): Version[] {
  return names
    .map(parseVersion)
    .filter((v): v is Version => v?.state === 'built')
    .sort((a, b) => b.startedMs - a.startedMs || (a.name < b.name ? 1 : -1));
}
