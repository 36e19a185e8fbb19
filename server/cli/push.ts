// `atelier module push DIR`: checks the manifest locally, packs the directory reproducibly, records where it
// came from in git, and publishes it; content the server already has is never uploaded again.
import { execFile } from 'node:child_process';
import { listModuleFiles, packDirectory } from '../artifacts/archive';
import { sha256 } from '../artifacts/store';
import { withoutCredentials } from '../modules/source';
import type { ModuleTestResult } from '../vocabulary';
import type { Client } from './client';
import { ApiError } from './errors';
import { readModuleDir } from './module-dir';

export interface ModuleSource {
  repository?: string;
  commit?: string;
  branch?: string;
  dirty?: boolean;
}

export interface PushOptions {
  /** Tags to move; the server's default (`latestAlpha`, and `latest` for a first version) when empty. */
  tags: string[];
  testResult?: ModuleTestResult;
  force?: boolean;
}

export interface PushResult {
  created: boolean;
  uploaded: boolean;
  ref: string;
  version: string;
  digest: string;
  files: number;
  bytes: number;
  tags: string[];
}

const RESULT = 'created movedTags version { ref version digest }';
const PUBLISH = /* GraphQL */ `
  mutation ($artifact: File, $digest: String, $source: ModuleSourceInput, $tags: [String!], $testResult: ModuleTestResultInput, $force: Boolean) {
    publishModuleVersion(artifact: $artifact, digest: $digest, source: $source, tags: $tags, testResult: $testResult, force: $force) { ${RESULT} }
  }
`;

interface Published {
  created: boolean;
  movedTags: string[];
  version: { ref: string; version: string; digest: string };
}

export async function pushModule(client: Client, dir: string, options: PushOptions): Promise<PushResult> {
  const { root, manifest } = await readModuleDir(dir);
  const files = await listModuleFiles(root);
  const [archive, source] = await Promise.all([packDirectory(root, files), gitSource(root)]);
  const digest = sha256(archive);
  const variables = {
    digest,
    source: source ?? null,
    tags: options.tags.length ? options.tags : null,
    testResult: options.testResult ?? null,
    force: options.force ?? null,
  };

  // Unchanged content: one small request moves the tags, and the archive never leaves this machine.
  let published: Published | undefined;
  let uploaded = false;
  try {
    published = (await client.request<{ publishModuleVersion: Published }>(PUBLISH, { ...variables, artifact: null })).publishModuleVersion;
  } catch (error) {
    if (!(error instanceof ApiError && error.code === 'NOT_FOUND')) throw error;
  }
  if (!published) {
    published = (
      await client.upload<{ publishModuleVersion: Published }>(PUBLISH, variables, 'artifact', archive, `${manifest.namespace}-${manifest.name}.tar.gz`)
    ).publishModuleVersion;
    uploaded = true;
  }
  return {
    created: published.created,
    uploaded,
    ref: published.version.ref,
    version: published.version.version,
    digest: published.version.digest,
    files: files.length,
    bytes: archive.byteLength,
    tags: published.movedTags,
  };
}

export function describePush(r: PushResult): string {
  const tags = r.tags.length ? `tags: ${r.tags.join(', ')}` : 'no tags moved';
  if (!r.created) return `unchanged: ${r.ref} already has this content, nothing uploaded (${tags})`;
  return `published ${r.ref} (${r.digest.slice(0, 19)}…, ${r.files} file${r.files === 1 ? '' : 's'}, ${formatKb(r.bytes)}; ${tags})`;
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
