// Puts a module's files where a Databricks cluster can read them: the archive is unpacked locally and each file is
// written with the Files API under `<stagingDir>/<digest>/`, a Unity Catalog volume path. The directory is named by
// content digest, so uploads are idempotent and shared by every task of the same module version.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tar from 'tar';
import type { DatabricksHttp } from './http';

/** Uploads the module archive with this digest; resolves to the remote directory holding its files. */
export type UploadModule = (digest: string, archivePath: string) => Promise<string>;

/** The directory name for a digest: its hex part, which is safe in any path. */
export function digestDirName(digest: string): string {
  const hex = digest.replace(/^sha256:/, '');
  return hex.replace(/[^A-Za-z0-9_-]/g, '_');
}

export function createVolumesUpload(http: DatabricksHttp, stagingDir: string): UploadModule {
  const root = stagingDir.replace(/\/+$/, '');
  return async (digest, archivePath) => {
    const remoteDir = `${root}/${digestDirName(digest)}`;
    const scratch = await mkdtemp(path.join(tmpdir(), 'atelier-databricks-upload-'));
    try {
      await tar.x({ file: archivePath, cwd: scratch, preserveOwner: false, strict: true });
      for (const relative of await listFiles(scratch)) {
        const bytes = await readFile(path.join(scratch, relative));
        const remote = `${remoteDir}/${relative.split(path.sep).join('/')}`;
        // Files API: PUT /api/2.0/fs/files{path}; each path segment is URL-encoded, the slashes stay.
        const encoded = remote.split('/').map(encodeURIComponent).join('/');
        await http.request('PUT', `/api/2.0/fs/files${encoded}`, { query: { overwrite: 'true' }, bytes });
      }
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
    return remoteDir;
  };
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(path.join(dir, prefix), { withFileTypes: true })) {
    const relative = path.join(prefix, entry.name);
    if (entry.isDirectory()) files.push(...(await listFiles(dir, relative)));
    else if (entry.isFile()) files.push(relative);
  }
  return files.sort();
}
