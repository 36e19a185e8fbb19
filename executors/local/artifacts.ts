// Files a module leaves under ATELIER_ARTIFACTS_DIR, logged as its task's artifacts when it exits 0, before its
// success is reported: a model registered from an artifact folder (registerModel) then finds its files, as SageMaker's
// /opt/ml/model or a Flyte directory output would be uploaded. The host, not the module, uploads them (a sandboxed
// module has no network), each through the control plane's MLflow artifact route with the attempt's own tracking
// token, which logs into that task only and only while the attempt runs. The folder is read as the module left it and
// never followed out of: a symbolic link, a FIFO or a device in it refuses the upload (it could name a host file the
// module may not read), as does what would log other bytes than the module left (a name not in UTF-8, a file the
// host cannot read, one still changing while it is sent); files are opened without following links. The folders on
// the way are read once the module has exited: in the sandbox nothing of it outlives its exit (its pid namespace ends
// with it), so nothing can swap a folder for a link meanwhile; a module run without the sandbox runs as the host's
// own user, with nothing to gain.
import { constants } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TaskTracking } from '../../plugins/protocol';

/** Most files one attempt logs this way, their most bytes in all, and how deep its folders go. */
export const MAX_ARTIFACT_FILES = 1000;
export const MAX_ARTIFACT_BYTES = 8 * 1024 ** 3;
const MAX_DEPTH = 32;
/** How long one sending of a file may take before it is given up (and sent again). */
const UPLOAD_TIMEOUT_MS = 120_000;

/** The module's folder cannot be logged as it is (the attempt fails for good: running it again leaves the same folder). */
export class ArtifactsRefused extends Error {}

/** A file or folder the module left that this host cannot read (its mode, or gone): the module's to fix. */
const unreadable = (relPath: string, error: NodeJS.ErrnoException) =>
  new ArtifactsRefused(
    `"${relPath}" cannot be read (${error.code ?? error.message}): leave files and folders the module's user can read, and keep them until it exits`,
  );

export interface ArtifactFile {
  /** Relative, `/`-separated: the artifact's path. */
  path: string;
  /** Where it lies on this host. */
  file: string;
  size: number;
}

/**
 * The regular files under `root` (none when it does not exist), in path order. `within`: a folder above `root` that
 * the module cannot replace (its attempt folder); every folder from it down to `root` must be a folder, not a link
 * the module left in its place (`outputs` or `artifacts` itself linked to /etc or the data directory: the host, which
 * reads more than the module, would have read them there and logged them).
 */
export async function collectArtifacts(root: string, within = root): Promise<ArtifactFile[]> {
  const found: ArtifactFile[] = [];
  const steps = path.relative(within, root);
  if (steps.startsWith('..') || path.isAbsolute(steps)) throw new Error(`${root} is not under ${within}`);
  let at = within;
  for (const step of steps ? steps.split(path.sep) : []) {
    at = path.join(at, step);
    const stat = await lstat(at).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw unreadable(path.relative(within, at), error);
    });
    if (!stat) return found; // nothing left there: no artifacts
    if (!stat.isDirectory())
      throw new ArtifactsRefused(
        `"${path.relative(within, at)}" is ${stat.isSymbolicLink() ? 'a symbolic link' : 'not a folder'}: leave ATELIER_ARTIFACTS_DIR and the folders above it as they were made`,
      );
  }
  const walk = async (dir: string, rel: string, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH) throw new ArtifactsRefused(`"${rel}" is more than ${MAX_DEPTH} folders deep`);
    // Names as bytes: one that is not UTF-8 would come back as another name (U+FFFD in place of its bytes) and name no
    // file, and what the module left the host cannot read is the module's doing, never the platform's to retry.
    const entries = await readdir(dir, { withFileTypes: true, encoding: 'buffer' }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' && depth === 0) return [];
      throw unreadable(rel || '.', error);
    });
    const named = entries.map((entry) => {
      const name = entry.name.toString('utf8');
      const relPath = rel ? `${rel}/${name}` : name;
      if (!Buffer.from(name, 'utf8').equals(entry.name))
        throw new ArtifactsRefused(`"${relPath}" is not a UTF-8 name: name the files in ATELIER_ARTIFACTS_DIR in UTF-8`);
      return { entry, name, relPath };
    });
    for (const { entry, name, relPath } of named.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const file = path.join(dir, name);
      if (entry.isDirectory()) await walk(file, relPath, depth + 1);
      else if (entry.isFile()) {
        if (found.length >= MAX_ARTIFACT_FILES) throw new ArtifactsRefused(`more than ${MAX_ARTIFACT_FILES} files`);
        const { size } = await lstat(file).catch((error: NodeJS.ErrnoException) => {
          throw unreadable(relPath, error);
        });
        found.push({ path: relPath, file, size });
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
 * refuses one (a path it does not take, a file over its limit), any other error when it could not take them in time.
 * `execution`: this execution's number (the claim's answer, protocol 4), sent with each file so that another
 * execution of the same attempt (a redelivered message run elsewhere at once) never mixes its files with these: the
 * attempt keeps the files of the execution whose result is recorded.
 */
export async function uploadArtifacts(
  tracking: TaskTracking,
  files: ArtifactFile[],
  signal?: AbortSignal,
  retryMs = RETRY_MS,
  execution?: number,
): Promise<void> {
  const headers: Record<string, string> = { authorization: `Bearer ${tracking.token}`, 'content-type': 'application/octet-stream' };
  if (execution !== undefined) headers['x-atelier-execution'] = String(execution);
  const base = `${tracking.uri.replace(/\/+$/, '')}/api/2.0/mlflow-artifacts/artifacts/0/${encodeURIComponent(tracking.runId)}/artifacts/`;
  for (const artifact of files) {
    const url = base + artifact.path.split('/').map(encodeURIComponent).join('/');
    // Busy (its uploads' budget full: 503 with Retry-After), restarting or out of reach: the same file again after a
    // wait, rather than failing an attempt whose module has done its work (a retry would run it all again).
    for (let attempt = 1; ; attempt++) {
      const waitMs = await putOnce(url, headers, artifact, signal).catch((error: unknown) => {
        if (error instanceof ArtifactsRefused || signal?.aborted || attempt >= UPLOAD_TRIES) throw error;
        return error instanceof Busy ? Math.min(error.retryAfterMs ?? retryMs * 2 ** (attempt - 1), MAX_WAIT_MS) : retryMs * 2 ** (attempt - 1);
      });
      if (waitMs === undefined) break;
      await sleep(waitMs, undefined, { signal });
    }
  }
}

/** How many times one file is sent before the attempt fails, the first wait between them, the longest. */
const UPLOAD_TRIES = 8;
const RETRY_MS = 500;
const MAX_WAIT_MS = 30_000;

/** The control plane answered "not now" (5xx, 429), with its Retry-After when it gave one. */
class Busy extends Error {
  constructor(
    message: string,
    readonly retryAfterMs: number | null,
  ) {
    super(message);
  }
}

/** One PUT of one file: undefined once stored. */
async function putOnce(url: string, headers: Record<string, string>, artifact: ArtifactFile, signal?: AbortSignal): Promise<undefined> {
  // Opened without following a link put there since the folder was read, and checked to be the file it listed.
  const handle = await open(artifact.file, constants.O_RDONLY | constants.O_NOFOLLOW).catch((error: NodeJS.ErrnoException) => {
    throw error.code === 'ELOOP' ? new ArtifactsRefused(`"${artifact.path}" became a symbolic link`) : unreadable(artifact.path, error);
  });
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new ArtifactsRefused(`"${artifact.path}" is not a regular file`);
    const response = await fetch(url, {
      method: 'PUT',
      headers: { ...headers, 'content-length': String(stat.size) },
      // Exactly the bytes it declared: a file still being written (by a process the module left behind, outside the
      // sandbox) is refused below rather than sent with a length that does not match.
      body: stat.size ? (Readable.toWeb(handle.createReadStream({ autoClose: false, start: 0, end: stat.size - 1 })) as ReadableStream) : new Uint8Array(0),
      duplex: 'half',
      signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(UPLOAD_TIMEOUT_MS)]) : AbortSignal.timeout(UPLOAD_TIMEOUT_MS),
    } as RequestInit);
    if (response.ok) {
      await response.body?.cancel();
      const after = await handle.stat();
      if (after.size !== stat.size || after.mtimeMs !== stat.mtimeMs)
        throw new ArtifactsRefused(`"${artifact.path}" changed while it was being sent: finish writing every artifact before the module exits`);
      return undefined;
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
    if (response.status >= 500 || response.status === 429) {
      const after = Number(response.headers.get('retry-after'));
      throw new Busy(refusal, Number.isFinite(after) && after >= 0 ? after * 1000 : null);
    }
    throw new ArtifactsRefused(refusal);
  } finally {
    await handle.close();
  }
}
