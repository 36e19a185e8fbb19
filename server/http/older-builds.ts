// The assets of older dashboards builds (dashboards/dist.builds/, kept for a while by dashboards/prune-builds.ts): a
// tab opened on an older build asks for its own lazy chunks, styles and fonts, which a rebuild renamed (their names
// carry a hash of their content, so any build's file of that name is the right one). Only whole builds are read,
// only their assets/ folder (never an index.html or an unhashed file of theirs), newest first.
//
// Any client can ask for made-up asset names, so a miss must not read the disk: the kept builds' asset names are held
// in an index per dashboards folder, made again only when the list of whole builds changes, and that list is read
// at most once a second. A build never changes once whole (it is renamed from `.partial` when done), so its names
// stand while its name is listed. A hit is looked at on disk before it is served: a build removed since the index
// was made is never served from, even within that second.

import type { Stats } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { builtVersions, versionsDir } from '../../dashboards/build-versions';

/** How long the list of kept builds is trusted before it is read again. */
const RECHECK_MS = 1000;

/** What the index reads the disk and the clock with (tests count the calls and move the clock). */
export interface OlderBuildsIo {
  readdir: (dir: string) => Promise<string[]>;
  stat: (file: string) => Promise<Stats>;
  now: () => number;
}

interface BuildsIndex {
  /** When dist.builds/ was last listed (io.now()). */
  checkedMs: number;
  /** The whole builds' names, newest first, joined: what the index below was made from. */
  builds: string;
  /** Asset name → the folders of the builds that have it, newest first. */
  assets: Map<string, string[]>;
  /** A listing or a rebuild under way: concurrent misses wait for it instead of starting their own. */
  refreshing?: Promise<void>;
}

/** Whether `file` lies inside the folder `dir` (the static handler's guard against `..`). */
export function within(dir: string, file: string): boolean {
  return file.startsWith(dir + path.sep);
}

/** The older builds' assets, read through `io`; one index per dist.builds/ folder asked about. */
export function createOlderBuilds(io: OlderBuildsIo = { readdir: (dir) => readdir(dir), stat, now: Date.now }) {
  const indexes = new Map<string, BuildsIndex>();

  /** The index of `versions`, its listing read again when older than RECHECK_MS (or the clock moved back). */
  async function freshIndex(versions: string): Promise<BuildsIndex> {
    let index = indexes.get(versions);
    if (!index) {
      index = { checkedMs: Number.NEGATIVE_INFINITY, builds: '', assets: new Map() };
      indexes.set(versions, index);
    }
    const age = io.now() - index.checkedMs;
    if (!index.refreshing && (age >= RECHECK_MS || age < 0)) {
      const stale = index;
      stale.refreshing = refresh(versions, stale).finally(() => {
        stale.refreshing = undefined;
      });
    }
    await index.refreshing;
    return index;
  }

  /** Lists the whole builds; reads their assets/ folders again only when that list changed. */
  async function refresh(versions: string, index: BuildsIndex): Promise<void> {
    const names = builtVersions(await io.readdir(versions).catch(() => [])).map((v) => v.name);
    index.checkedMs = io.now();
    const builds = names.join('\n');
    if (builds === index.builds) return;
    const assets = new Map<string, string[]>();
    for (const name of names) {
      const build = path.join(versions, name);
      // a build removed meanwhile has no assets; the next change of the list makes the index again
      for (const asset of await io.readdir(path.join(build, 'assets')).catch(() => [])) {
        const holders = assets.get(asset);
        if (holders) holders.push(build);
        else assets.set(asset, [build]);
      }
    }
    index.assets = assets;
    index.builds = builds;
  }

  return {
    /**
     * The file `assets/<name>` of the newest kept build that has it, other than `current` (the resolved dist/); null
     * when none has. `name` must be a plain file name of the assets folder.
     */
    async assetOf(root: string, current: string, name: string): Promise<{ file: string; info: Stats } | null> {
      if (!name || name !== path.basename(name) || name.startsWith('.')) return null;
      const index = await freshIndex(path.join(root, versionsDir));
      for (const build of index.assets.get(name) ?? []) {
        const assets = path.join(build, 'assets');
        const file = path.join(assets, name);
        if (build === current || !within(assets, file)) continue;
        const info = await io.stat(file).catch(() => null);
        if (info?.isFile()) return { file, info };
      }
      return null;
    },
  };
}

/** The control plane's older builds (server/http/static.ts): one index per dashboards folder for the process. */
export const assetOfOlderBuild = createOlderBuilds().assetOf;
