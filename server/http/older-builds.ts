// The assets of older dashboards builds (dashboards/dist.builds/, kept for a while by dashboards/prune-builds.ts): a
// tab opened on an older build asks for its own lazy chunks, styles and fonts, which a rebuild renamed (their names
// carry a hash of their content, so any build's file of that name is the right one). Only whole builds are read,
// only their assets/ folder (never an index.html or an unhashed file of theirs), newest first.

import type { Stats } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { builtVersions, versionsDir } from '../../dashboards/build-versions';

/** Whether `file` lies inside the folder `dir` (the static handler's guard against `..`). */
export function within(dir: string, file: string): boolean {
  return file.startsWith(dir + path.sep);
}

/**
 * The file `assets/<name>` of the newest kept build that has it, other than `current` (the resolved dist/); null when
 * none has. `name` must be a plain file name of the assets folder.
 */
export async function assetOfOlderBuild(root: string, current: string, name: string): Promise<{ file: string; info: Stats } | null> {
  if (!name || name !== path.basename(name) || name.startsWith('.')) return null;
  const versions = path.join(root, versionsDir);
  const names = await readdir(versions).catch(() => []);
  for (const version of builtVersions(names)) {
    const assets = path.join(versions, version.name, 'assets');
    const file = path.join(assets, name);
    if (path.join(versions, version.name) === current || !within(assets, file)) continue;
    const info = await stat(file).catch(() => null);
    if (info?.isFile()) return { file, info };
  }
  return null;
}
