// A module directory as `push`, `run` and `--test` read it: its manifest checked, its entrypoint present.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseManifest } from '../modules/manifest';
import { MANIFEST_FILE, type ModuleManifest } from '../vocabulary';
import { CliError } from './errors';

/** Reads and checks a module directory the way `push` does; names the file the user is editing. */
export async function readModuleDir(dir: string): Promise<{ root: string; manifest: ModuleManifest }> {
  const root = path.resolve(dir);
  const isDir = await stat(root).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDir) throw new CliError(`${dir} is not a directory: pass the module's directory (the one holding ${MANIFEST_FILE})`);
  const manifestText = await readFile(path.join(root, MANIFEST_FILE), 'utf8').catch(() => null);
  if (manifestText === null)
    throw new CliError(
      `${dir} has no ${MANIFEST_FILE}: a module directory needs one at its root (start from examples/iris/train/${MANIFEST_FILE}; the README's "Modules" lists its fields)`,
    );
  const manifest = parseManifest(manifestText);
  if (
    !(await stat(path.join(root, manifest.entrypoint)).then(
      (s) => s.isFile(),
      () => false,
    ))
  ) {
    throw new CliError(`${MANIFEST_FILE} names entrypoint "${manifest.entrypoint}", which is not a file in ${dir}`);
  }
  return { root, manifest };
}
