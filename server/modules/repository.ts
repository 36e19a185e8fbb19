// Where a git push event may make the server clone from: the repository it names, normalised the way git and the
// git host will read it, matched against the allowlist (ATELIER_GIT_REPOSITORIES) by whole path segments, never by
// string prefix. The location that matched is the one cloned, so what was checked is what is built.
import { realpath } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { allowedAddresses, type OutboundAllow, OutboundRefusedError } from '../net/outbound';

/** A repository as the allowlist compares it. */
export interface RepositoryLocation {
  kind: 'local' | 'remote';
  /** What is compared: `scheme://host:port` (remote) or `file://` (local) … */
  origin: string;
  /** … and the path's segments, decoded, dot segments resolved (remote: a trailing `.git` dropped from the last). */
  segments: string[];
  /** What git clones: a real path for local repositories, the re-serialised URL (credentials kept) for remote ones. */
  clone: string;
}

const REMOTE_SCHEMES: Record<string, number | null> = { https: 443, http: 80, ssh: 22, git: 9418 };

/**
 * Normalises a repository for matching, without touching the filesystem (local paths are resolved lexically;
 * `resolveRepository` then follows symlinks). Null: not a location the server clones from at all (git's
 * `transport::address` helpers, URLs with queries or fragments, unknown schemes, `..` above the root, an encoded `/`).
 */
export function normalizeRepository(repository: string): RepositoryLocation | null {
  if (!repository || repository.startsWith('-') || repository.includes('::') || /[\0\r\n]/.test(repository)) return null;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(repository)?.[1]?.toLowerCase();
  if (scheme === 'file') {
    try {
      const url = new URL(repository);
      if (url.host || url.search || url.hash) return null;
      return local(fileURLToPath(url));
    } catch {
      return null;
    }
  }
  if (scheme) return remote(repository, scheme);
  // scp-like `[user@]host:path` (a colon before any slash), as git reads it: ssh.
  const scp = /^(?:([^@/:]+)@)?([^@/:]+):(?!\/\/)(.*)$/.exec(repository);
  if (scp) return remote(`ssh://${scp[1] ? `${scp[1]}@` : ''}${scp[2]}/${scp[3]!.replace(/^\/+/, '')}`, 'ssh');
  return local(repository);
}

function local(file: string): RepositoryLocation | null {
  const resolved = path.resolve(file);
  // Real paths compare exactly: `repo` and `repo.git` are two directories.
  return { kind: 'local', origin: 'file://', segments: resolved.split('/').filter(Boolean), clone: resolved };
}

function remote(repository: string, scheme: string): RepositoryLocation | null {
  if (!(scheme in REMOTE_SCHEMES)) return null;
  let url: URL;
  try {
    url = new URL(repository);
  } catch {
    return null;
  }
  if (url.search || url.hash || !url.hostname) return null;
  // The raw path, before WHATWG's own (scheme-dependent) handling: git hosts decode it, so decoding comes first.
  const rawPath = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*(\/[^?#]*)?/i.exec(repository)?.[1] ?? '/';
  const segments: string[] = [];
  for (const raw of rawPath.split('/')) {
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      return null;
    }
    if (segment.includes('/') || segment.includes('\\') || segment.includes('\0')) return null;
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (!segments.length) return null;
      segments.pop();
      continue;
    }
    segments.push(segment);
  }
  const port = url.port && Number(url.port) !== REMOTE_SCHEMES[scheme] ? `:${url.port}` : '';
  const host = url.hostname.toLowerCase();
  const userinfo = url.username ? `${url.username}${url.password ? `:${url.password}` : ''}@` : '';
  return {
    kind: 'remote',
    origin: `${scheme}://${host}${port}`,
    segments: withoutGit(segments),
    clone: `${scheme}://${userinfo}${host}${port}/${segments.map(encodeURIComponent).join('/')}`,
  };
}

const withoutGit = (segments: string[]) => segments.map((s, i) => (i === segments.length - 1 && s.endsWith('.git') && s.length > 4 ? s.slice(0, -4) : s));

/** Whether `entry` covers `candidate`: same origin, and the entry's segments are the candidate's first ones. */
export function covers(entry: RepositoryLocation, candidate: RepositoryLocation): boolean {
  return entry.origin === candidate.origin && entry.segments.length <= candidate.segments.length && entry.segments.every((s, i) => s === candidate.segments[i]);
}

/**
 * The location to clone for `repository`, or null when the allowlist does not cover it. Local paths (and
 * `file://` URLs) must be listed and are compared by their real path, so a symlink or `..` cannot lead out of
 * a listed directory; remote URLs are allowed by an empty list, else must be covered by an entry.
 */
export async function resolveRepository(repository: string, allowed: string[]): Promise<RepositoryLocation | null> {
  let candidate = normalizeRepository(repository);
  if (!candidate) return null;
  if (candidate.kind === 'local') {
    if (!allowed.length) return null;
    candidate = await real(candidate);
    if (!candidate) return null;
  } else if (!allowed.length) return candidate;
  for (const entry of allowed) {
    let normal = normalizeRepository(entry);
    if (normal?.kind === 'local') normal = (await real(normal)) ?? normal;
    if (normal && covers(normal, candidate)) return candidate;
  }
  return null;
}

async function real(location: RepositoryLocation): Promise<RepositoryLocation | null> {
  try {
    return local(await realpath(location.clone));
  } catch {
    return null; // not there: nothing to clone, and git would otherwise try `PATH.git` and `PATH/.git` itself
  }
}

/**
 * The git options that make a clone of an unlisted remote reach only allowed addresses: http(s) only (git and ssh
 * resolve names themselves, so an admin lists such repositories), the host pinned to the addresses just checked
 * (curl would otherwise resolve it again), and never a redirect. Throws OutboundRefusedError for a refused host.
 */
export async function pinnedCloneOptions(location: RepositoryLocation, allow: OutboundAllow): Promise<string[]> {
  const url = new URL(location.clone);
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new OutboundRefusedError(
      url.hostname,
      `the server clones an unlisted repository over http(s) only; an admin lists ${url.protocol}// ones in ATELIER_GIT_REPOSITORIES`,
    );
  const addresses = await allowedAddresses(url.hostname, allow).catch((error) => {
    if (error instanceof OutboundRefusedError) throw error;
    throw new OutboundRefusedError(url.hostname, 'it does not resolve'); // said like a refusal: no oracle for internal names
  });
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const listed = addresses.map((a) => (isIP(a) === 6 ? `[${a}]` : a)).join(',');
  return isIP(host) ? [] : ['-c', `http.curloptResolve=${host}:${port}:${listed}`];
}
