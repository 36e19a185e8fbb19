// `POST /hooks/git`: CI (or a git host's webhook) reports a push; the control plane checks out that commit from
// a repository it may reach, finds every `atelier.module.yaml` in it and publishes those modules with the
// commit recorded as their source. All manifests and permissions are checked before anything is published.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { listModuleFiles, packDirectory, readArchiveFile } from '../artifacts/archive';
import type { ObjectStore } from '../artifacts/store';
import type { AppAbility } from '../auth/ability';
import type { Db } from '../db/client';
import type { Identity } from '../db/tables/identities';
import type { ModuleVersion } from '../db/tables/modules';
import { AtelierError, badInput, type ErrorDetail, forbidden } from '../errors';
import { type OutboundAllow, OutboundRefusedError } from '../net/outbound';
import { assertMayWriteNamespace } from '../teams/teams';
import { MANIFEST_FILE } from '../vocabulary';
import { MAX_MANIFEST_BYTES, readManifest } from './manifest';
import { publishModuleVersion } from './publish';
import { pinnedCloneOptions, resolveRepository } from './repository';
import { withoutCredentials } from './source';

export interface GitPushEvent {
  repository: string;
  /** `refs/heads/main`; its branch is recorded as the source branch. */
  ref?: string;
  commit: string;
  /** Tags to move; the publish default when absent. */
  tags?: string[];
  /** Move tags even when the version they point at was built from a newer commit (an explicit rollback). */
  allowOlder?: boolean;
}

export interface GitHookResult {
  repository: string;
  commit: string;
  modules: { ref: string; path: string; digest: string; created: boolean; movedTags: string[]; keptTags: { tag: string; reason: string }[] }[];
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
  if (b.allowOlder !== undefined && typeof b.allowOlder !== 'boolean') details.push({ path: 'allowOlder', message: 'must be true or false' });
  if (details.length) throw badInput(`Not a push event: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}.`, details);
  return {
    repository: repository as string,
    commit: commit as string,
    ref: b.ref as string | undefined,
    tags: b.tags as string[] | undefined,
    allowOlder: b.allowOlder === true,
  };
}

export { resolveRepository } from './repository';

/** Git with remote helpers that run commands (`ext::`, `fd::`) off; its error is the last line of stderr, with the scratch directory's path removed. */
function git(args: string[], cwd: string, scratch: string): Promise<string> {
  const safe = ['-c', 'protocol.ext.allow=never', '-c', 'protocol.fd.allow=never', ...args];
  return new Promise((resolve, reject) =>
    execFile('git', safe, { cwd, timeout: 120_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } }, (error, stdout, stderr) =>
      error ? reject(new Error((stderr.trim().split('\n').slice(-1)[0] || 'git failed').replaceAll(scratch, '<scratch>'))) : resolve(stdout),
    ),
  );
}

/** Whether `older` is a strict ancestor of `newer` in the checkout (false when either is unknown there). */
function isAncestor(checkout: string, scratch: string, older: string, newer: string): Promise<boolean> {
  if (older === newer) return Promise.resolve(false);
  return git(['merge-base', '--is-ancestor', older, newer], checkout, scratch).then(
    () => true,
    () => false,
  );
}

export interface GitHookServices {
  db: Db;
  store: ObjectStore;
  allowedRepositories: string[];
  /** Private ranges an unlisted repository may be at (ATELIER_OUTBOUND_ALLOW_PRIVATE); listed ones are the admin's choice. */
  outboundAllow?: OutboundAllow;
  /** The most a module's files may hold (the server's `maxUnpackedBytes`). */
  maxUnpackedBytes?: number;
}

export async function buildFromGit(services: GitHookServices, ability: AppAbility, identity: Identity, event: GitPushEvent): Promise<GitHookResult> {
  // The location that matched the allowlist is the one cloned: normalised, symlinks resolved.
  const location = await resolveRepository(event.repository, services.allowedRepositories);
  if (!location) {
    throw forbidden(
      `This server does not build from ${withoutCredentials(event.repository)}; an admin lists the repositories it may clone in ATELIER_GIT_REPOSITORIES (local paths must be listed; entries match whole path segments).`,
    );
  }
  const repository = withoutCredentials(location.clone);
  let pinned: string[] = [];
  if (location.kind === 'remote' && !services.allowedRepositories.length) {
    try {
      pinned = await pinnedCloneOptions(location, services.outboundAllow ?? []);
    } catch (error) {
      if (!(error instanceof OutboundRefusedError)) throw error;
      throw forbidden(`This server does not build from ${repository}: ${error.message}.`);
    }
  }
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-git-'));
  try {
    const checkout = path.join(scratch, 'checkout');
    try {
      await git([...pinned, '-c', 'http.followRedirects=false', 'clone', '--quiet', '--no-checkout', '--', location.clone, checkout], scratch, scratch);
    } catch (error) {
      throw badInput(`Cannot clone ${repository} (check its URL and that this server may read it): ${(error as Error).message}`);
    }
    try {
      await git(['-c', 'advice.detachedHead=false', 'checkout', '--quiet', event.commit], checkout, scratch);
    } catch {
      throw badInput(`Commit ${event.commit} is not in ${repository}; push it before sending the event.`);
    }
    const manifests = (await git(['ls-files', '-z'], checkout, scratch)).split('\0').filter((f) => f === MANIFEST_FILE || f.endsWith(`/${MANIFEST_FILE}`));
    if (!manifests.length) throw badInput(`Commit ${event.commit.slice(0, 12)} has no ${MANIFEST_FILE}; nothing to build (add one beside each module's code).`);
    if (manifests.length > MAX_MODULES)
      throw badInput(`Commit ${event.commit.slice(0, 12)} has ${manifests.length} modules; one event builds at most ${MAX_MODULES}.`);

    // Everything is checked before anything is published: a bad manifest or a foreign namespace publishes nothing.
    const problems: ErrorDetail[] = [];
    const built: { dir: string; archive: Buffer; namespace: string }[] = [];
    for (const file of manifests.sort()) {
      const dir = path.posix.dirname(file);
      try {
        const archive = await packDirectory(path.join(checkout, dir), await listModuleFiles(path.join(checkout, dir)), services.maxUnpackedBytes);
        const manifest = await readManifest((await readArchiveFile(archive, MANIFEST_FILE, MAX_MANIFEST_BYTES, services.maxUnpackedBytes))!);
        built.push({ dir, archive, namespace: manifest.namespace });
      } catch (error) {
        problems.push({ path: file, message: (error as Error).message.replaceAll(`${checkout}/`, '').replaceAll(scratch, '<scratch>') });
      }
    }
    if (problems.length)
      throw new AtelierError('INVALID_MANIFEST', `Nothing was published: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems);
    for (const namespace of new Set(built.map((b) => b.namespace))) await assertMayWriteNamespace(services.db, ability, namespace);

    const source = {
      repository,
      commit: event.commit,
      branch: event.ref?.replace(/^refs\/heads\//, '') ?? null,
      dirty: false,
    };
    // A push never moves a tag backwards: a tag whose version was built from a commit that has this one in its
    // history (a newer commit of the same history) stays, unless the event asks for it (`allowOlder`).
    const keepTag = async (_tag: string, current: ModuleVersion): Promise<string | null> => {
      const newer = current.source?.commit;
      if (event.allowOlder || typeof newer !== 'string' || !(await isAncestor(checkout, scratch, event.commit, newer))) return null;
      return `it points at version ${current.version}, built from the newer commit ${newer.slice(0, 12)} that contains ${event.commit.slice(0, 12)}; send "allowOlder": true to move it back`;
    };
    const modules: GitHookResult['modules'] = [];
    for (const b of built) {
      const r = await publishModuleVersion(
        services.db,
        services.store,
        ability,
        { archive: b.archive, source, tags: event.tags, keepTag, maxUnpackedBytes: services.maxUnpackedBytes },
        identity,
      );
      modules.push({
        ref: `${b.namespace}/${r.version.manifest.name}@${r.version.version}`,
        path: b.dir,
        digest: r.version.digest,
        created: r.created,
        movedTags: r.movedTags,
        keptTags: r.keptTags,
      });
    }
    return { repository, commit: event.commit, modules };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
