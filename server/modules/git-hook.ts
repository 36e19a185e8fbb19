// `POST /hooks/git`: CI (or a git host's webhook) reports a push; the control plane checks out that commit from
// a repository it may reach, finds every `atelier.module.yaml` in it and publishes those modules with the
// commit recorded as their source. All manifests and permissions are checked before anything is published.
import { execFile } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { listModuleFiles, packDirectory, readArchiveFile } from '../artifacts/archive';
import type { ObjectStore } from '../artifacts/store';
import type { AppAbility } from '../auth/ability';
import type { Db } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { AtelierError, badInput, type ErrorDetail, forbidden } from '../errors';
import { assertMayWriteNamespace } from '../teams/teams';
import { MANIFEST_FILE } from '../vocabulary';
import { MAX_MANIFEST_BYTES, parseManifest } from './manifest';
import { publishModuleVersion } from './publish';
import { withoutCredentials } from './source';

export interface GitPushEvent {
  repository: string;
  /** `refs/heads/main`; its branch is recorded as the source branch. */
  ref?: string;
  commit: string;
  /** Tags to move; the publish default when absent. */
  tags?: string[];
}

export interface GitHookResult {
  repository: string;
  commit: string;
  modules: { ref: string; path: string; digest: string; created: boolean; movedTags: string[] }[];
}

const MAX_MODULES = 200;

/** Accepts our own shape (`repository`, `ref`, `commit`) and the common webhook one (`repository.clone_url`, `after`). */
export function parsePushEvent(body: unknown): GitPushEvent {
  if (typeof body !== 'object' || body === null)
    throw badInput('The body must be a JSON object: {"repository": URL, "ref": "refs/heads/main", "commit": SHA}.');
  const b = body as Record<string, unknown>;
  const repo = b.repository;
  const repository =
    typeof repo === 'string'
      ? repo
      : typeof repo === 'object' && repo
        ? ((repo as Record<string, unknown>).clone_url ?? (repo as Record<string, unknown>).url)
        : undefined;
  const commit = b.commit ?? b.after;
  const details: ErrorDetail[] = [];
  if (typeof repository !== 'string' || !repository || repository.startsWith('-'))
    details.push({ path: 'repository', message: 'must be the repository URL or path the server clones' });
  if (typeof commit !== 'string' || !/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(commit))
    details.push({ path: 'commit', message: 'must be a full commit SHA (40 hex digits)' });
  if (b.ref !== undefined && (typeof b.ref !== 'string' || b.ref.length > 256))
    details.push({ path: 'ref', message: 'must be a string such as refs/heads/main' });
  if (b.tags !== undefined && (!Array.isArray(b.tags) || b.tags.some((t) => typeof t !== 'string')))
    details.push({ path: 'tags', message: 'must be a list of tag names' });
  if (details.length) throw badInput(`Not a push event: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}.`, details);
  return { repository: repository as string, commit: commit as string, ref: b.ref as string | undefined, tags: b.tags as string[] | undefined };
}

/** `sha256=<hex>` of the raw body under the shared secret, compared in constant time. */
export function verifySignature(secret: string, body: Buffer, header: string | undefined): boolean {
  if (!header?.startsWith('sha256=')) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(body).digest('hex'));
  const given = Buffer.from(header.slice('sha256='.length));
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Local paths and file:// URLs are reachable only when listed; remote URLs when the list is empty or names them. */
export function repositoryAllowed(repository: string, allowed: string[]): boolean {
  const local = !/^[a-z][a-z0-9+.-]*:\/\//i.test(repository) && !/^[\w.-]+@[\w.-]+:/.test(repository);
  if (!allowed.length) return !local && !repository.startsWith('file:');
  return allowed.some((prefix) => repository === prefix || repository.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`));
}

function git(args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('git', args, { cwd, timeout: 120_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } }, (error, stdout, stderr) =>
      error ? reject(new Error(stderr.trim().split('\n').slice(-1)[0] || error.message)) : resolve(stdout),
    ),
  );
}

export interface GitHookServices {
  db: Db;
  store: ObjectStore;
  allowedRepositories: string[];
  /** The most a module's files may hold (the server's `maxUnpackedBytes`). */
  maxUnpackedBytes?: number;
}

export async function buildFromGit(services: GitHookServices, ability: AppAbility, identity: Identity, event: GitPushEvent): Promise<GitHookResult> {
  if (!repositoryAllowed(event.repository, services.allowedRepositories)) {
    throw forbidden(
      `This server does not build from ${withoutCredentials(event.repository)}; an admin lists the repositories it may clone in ATELIER_GIT_REPOSITORIES (local paths must be listed).`,
    );
  }
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-git-'));
  try {
    const checkout = path.join(scratch, 'checkout');
    try {
      await git(['clone', '--quiet', '--no-checkout', '--', event.repository, checkout], scratch);
    } catch (error) {
      throw badInput(`Cannot clone ${withoutCredentials(event.repository)}: ${(error as Error).message}`);
    }
    try {
      await git(['-c', 'advice.detachedHead=false', 'checkout', '--quiet', event.commit], checkout);
    } catch {
      throw badInput(`Commit ${event.commit} is not in ${withoutCredentials(event.repository)}; push it before sending the event.`);
    }
    const manifests = (await git(['ls-files', '-z'], checkout)).split('\0').filter((f) => f === MANIFEST_FILE || f.endsWith(`/${MANIFEST_FILE}`));
    if (!manifests.length) throw badInput(`Commit ${event.commit.slice(0, 12)} has no ${MANIFEST_FILE}; nothing to build.`);
    if (manifests.length > MAX_MODULES)
      throw badInput(`Commit ${event.commit.slice(0, 12)} has ${manifests.length} modules; one event builds at most ${MAX_MODULES}.`);

    // Everything is checked before anything is published: a bad manifest or a foreign namespace publishes nothing.
    const problems: ErrorDetail[] = [];
    const built: { dir: string; archive: Buffer; namespace: string }[] = [];
    for (const file of manifests.sort()) {
      const dir = path.posix.dirname(file);
      try {
        const archive = await packDirectory(path.join(checkout, dir), await listModuleFiles(path.join(checkout, dir)), services.maxUnpackedBytes);
        const manifest = parseManifest((await readArchiveFile(archive, MANIFEST_FILE, MAX_MANIFEST_BYTES, services.maxUnpackedBytes))!);
        built.push({ dir, archive, namespace: manifest.namespace });
      } catch (error) {
        problems.push({ path: file, message: (error as Error).message });
      }
    }
    if (problems.length)
      throw new AtelierError('INVALID_MANIFEST', `Nothing was published: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems);
    for (const namespace of new Set(built.map((b) => b.namespace))) await assertMayWriteNamespace(services.db, ability, namespace);

    const source = {
      repository: withoutCredentials(event.repository),
      commit: event.commit,
      branch: event.ref?.replace(/^refs\/heads\//, '') ?? null,
      dirty: false,
    };
    const modules: GitHookResult['modules'] = [];
    for (const b of built) {
      const r = await publishModuleVersion(
        services.db,
        services.store,
        ability,
        { archive: b.archive, source, tags: event.tags, maxUnpackedBytes: services.maxUnpackedBytes },
        identity,
      );
      modules.push({
        ref: `${b.namespace}/${r.version.manifest.name}@${r.version.version}`,
        path: b.dir,
        digest: r.version.digest,
        created: r.created,
        movedTags: r.movedTags,
      });
    }
    return { repository: source.repository, commit: event.commit, modules };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
