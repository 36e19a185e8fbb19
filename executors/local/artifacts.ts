// Files a module leaves under ATELIER_ARTIFACTS_DIR, logged as its task's artifacts when it exits 0, before its
// success is reported: a model registered from an artifact folder (registerModel) then finds its files, as SageMaker's
// /opt/ml/model or a Flyte directory output would be uploaded. The host, not the module, uploads them (a sandboxed
// module has no network), each through the control plane's MLflow artifact route with the attempt's own tracking
// token, which logs into that task only and only while the attempt runs. The folder is read as the module left it and
// never followed out of: a symbolic link, a FIFO or a device in it refuses the upload (it could name a host file the
// module may not read), and files are opened without following links. The folders on the way are read once the module
// has exited: in the sandbox nothing of it outlives its exit (its pid namespace ends with it), so nothing can swap a
// folder for a link meanwhile; a module run without the sandbox runs as the host's own user, with nothing to gain.
import { constants } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { TaskTracking } from '../../plugins/protocol';

/** Most files one attempt logs this way, their most bytes in all, and how deep its folders go. */
export const MAX_ARTIFACT_FILES = 1000;
export const MAX_ARTIFACT_BYTES = 8 * 1024 ** 3;
const MAX_DEPTH = 32;
/** How long one file's upload may take before the attempt fails (a retryable failure: the control plane may be restarting). */
const UPLOAD_TIMEOUT_MS = 120_000;

/** The module's folder cannot be logged as it is (the attempt fails for good: running it again leaves the same folder). */
export class ArtifactsRefused extends Error {}

export interface ArtifactFile {
  /** Relative, `/`-separated: the artifact's path. */
  path: string;
  /** Where it lies on this host. */
  file: string;
  size: number;
}

/** The regular files under `root` (none when it does not exist), in path order. */
export async function collectArtifacts(root: string): Promise<ArtifactFile[]> {
  const found: ArtifactFile[] = [];
  const walk = async (dir: string, rel: string, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH) throw new ArtifactsRefused(`"${rel}" is more than ${MAX_DEPTH} folders deep`);
    const entries = await readdir(dir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' && depth === 0) return [];
      throw error;
    });
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const relPath = rel ? `${rel}/${entry.name}` : entry.name;
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(file, relPath, depth + 1);
      else if (entry.isFile()) {
        if (found.length >= MAX_ARTIFACT_FILES) throw new ArtifactsRefused(`more than ${MAX_ARTIFACT_FILES} files`);
        found.push({ path: relPath, file, size: (await lstat(file)).size });
      } else
        throw new ArtifactsRefused(
          `"${relPath}" is ${entry.isSymbolicLink() ? 'a symbolic link' : 'not a regular file or folder'}: write the file itself into ATELIER_ARTIFACTS_DIR`,
        );
    }
  };
  await walk(root, '', 0);
  const bytes = found.reduce((sum, f) => sum + f.size, 0);
  if (bytes > MAX_ARTIFACT_BYTES)
    throw new ArtifactsRefused(
      `${found.length} files of ${bytes} bytes in all, more than ${MAX_ARTIFACT_BYTES} (keep large data in a dataset, not in artifacts)`,
    );
  return found;
}

/**
 * Uploads `files` as artifacts of the tracked task, one after another. Throws ArtifactsRefused when the control plane
 * refuses one (a path it does not take, a file over its limit), any other error when it could not be reached.
 */
export async function uploadArtifacts(tracking: TaskTracking, files: ArtifactFile[], signal?: AbortSignal): Promise<void> {
  const base = `${tracking.uri.replace(/\/+$/, '')}/api/2.0/mlflow-artifacts/artifacts/0/${encodeURIComponent(tracking.runId)}/artifacts/`;
  for (const artifact of files) {
    // Opened without following a link put there since the folder was read, and checked to be the file it listed.
    const handle = await open(artifact.file, constants.O_RDONLY | constants.O_NOFOLLOW).catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'ELOOP' ? new ArtifactsRefused(`"${artifact.path}" became a symbolic link`) : error;
    });
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw new ArtifactsRefused(`"${artifact.path}" is not a regular file`);
      const response = await fetch(base + artifact.path.split('/').map(encodeURIComponent).join('/'), {
        method: 'PUT',
        headers: { authorization: `Bearer ${tracking.token}`, 'content-type': 'application/octet-stream', 'content-length': String(stat.size) },
        body: Readable.toWeb(handle.createReadStream({ autoClose: false })) as ReadableStream,
        duplex: 'half',
        signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(UPLOAD_TIMEOUT_MS)]) : AbortSignal.timeout(UPLOAD_TIMEOUT_MS),
      } as RequestInit);
      if (response.ok) {
        await response.body?.cancel();
        continue;
      }
      const text = await response.text().catch(() => '');
      const message = (() => {
        try {
          return (JSON.parse(text) as { message?: string }).message ?? text;
        } catch {
          return text;
        }
      })().slice(0, 500);
      const refusal = `the control plane refused artifact "${artifact.path}" (${response.status}): ${message || response.statusText}`;
      // 5xx and 429: the control plane could not take it now; anything else is an answer about this file.
      if (response.status >= 500 || response.status === 429) throw new Error(refusal);
      throw new ArtifactsRefused(refusal);
    } finally {
      await handle.close();
    }
  }
}
