// `atelier module push DIR`: checks the manifest locally, packs the directory reproducibly, records where it
// came from in git, and uploads it to publishModuleVersion.
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { listModuleFiles, packDirectory } from '../artifacts/archive';
import { sha256 } from '../artifacts/store';
import { MANIFEST_FILE, parseManifest } from '../modules/manifest';
import type { Client } from './client';
import { CliError } from './errors';

export interface ModuleSource {
  repository?: string;
  commit?: string;
  branch?: string;
  dirty?: boolean;
}

export interface PushResult {
  created: boolean;
  ref: string;
  digest: string;
  files: number;
  bytes: number;
  tags: string[];
}

const PUBLISH = /* GraphQL */ `
  mutation ($artifact: File!, $digest: String, $source: ModuleSourceInput, $tags: [String!]) {
    publishModuleVersion(artifact: $artifact, digest: $digest, source: $source, tags: $tags) {
      created
      version { ref digest sizeBytes }
    }
  }
`;

export async function pushModule(client: Client, dir: string, tags: string[]): Promise<PushResult> {
  const root = path.resolve(dir);
  const isDir = await stat(root).then((s) => s.isDirectory(), () => false);
  if (!isDir) throw new CliError(`${dir} is not a directory: pass the module's directory (the one holding ${MANIFEST_FILE})`);
  const manifestText = await readFile(path.join(root, MANIFEST_FILE), 'utf8').catch(() => null);
  if (manifestText === null) throw new CliError(`${dir} has no ${MANIFEST_FILE}: a module directory needs one at its root`);
  // The server checks it too; checking here first saves an upload and names the file the user is editing.
  const manifest = parseManifest(manifestText);
  if (!(await stat(path.join(root, manifest.entrypoint)).then((s) => s.isFile(), () => false))) {
    throw new CliError(`${MANIFEST_FILE} names entrypoint "${manifest.entrypoint}", which is not a file in ${dir}`);
  }

  const files = await listModuleFiles(root);
  const archive = await packDirectory(root, files);
  const digest = sha256(archive);
  const source = await gitSource(root);
  const { publishModuleVersion: result } = await client.upload<{ publishModuleVersion: { created: boolean; version: { ref: string; digest: string } } }>(
    PUBLISH,
    { digest, source: source ?? null, tags },
    'artifact',
    archive,
    `${manifest.namespace}-${manifest.name}.tar.gz`,
  );
  return { created: result.created, ref: result.version.ref, digest: result.version.digest, files: files.length, bytes: archive.byteLength, tags };
}

export function describePush(r: PushResult): string {
  const tags = r.tags.join(', ');
  if (!r.created) return `unchanged: ${r.ref} already has this content (tags: ${tags})`;
  return `published ${r.ref} (${r.digest.slice(0, 19)}…, ${r.files} file${r.files === 1 ? '' : 's'}, ${formatKb(r.bytes)}; tags: ${tags})`;
}

function formatKb(bytes: number): string {
  return bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KB` : `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** Where the module's files come from, when they are in a git checkout; any git failure just leaves a field out. */
export async function gitSource(dir: string): Promise<ModuleSource | undefined> {
  const git = (...args: string[]) =>
    new Promise<string | null>((resolve) =>
      // --no-optional-locks: `status` must not take the index lock while someone else commits in this checkout.
      execFile('git', ['--no-optional-locks', ...args], { cwd: dir, timeout: 5000 }, (error, stdout) => resolve(error ? null : stdout.trim())),
    );
  if ((await git('rev-parse', '--is-inside-work-tree')) !== 'true') return undefined;
  const [remote, commit, branch, status] = await Promise.all([
    git('remote', 'get-url', 'origin'),
    git('rev-parse', 'HEAD'),
    git('symbolic-ref', '--short', '-q', 'HEAD'),
    git('status', '--porcelain', '--', '.'),
  ]);
  const source: ModuleSource = {};
  if (remote) source.repository = withoutCredentials(remote);
  if (commit) source.commit = commit;
  if (branch) source.branch = branch;
  // Only changes inside the module directory matter: they are what makes the archive differ from the commit.
  if (status !== null) source.dirty = status.length > 0;
  return source;
}

function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url; // scp-like `git@host:org/repo.git` has no password to strip
  }
}
