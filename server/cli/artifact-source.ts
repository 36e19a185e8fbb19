// Module archives for a standalone executor host: downloaded from the control plane's /artifacts/<digest> with
// the bearer token, verified against their digest, and kept in a local cache so each is fetched once.
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArtifactSource } from '../../plugins/host';
import { hashFile } from '../artifacts/store';

export interface HttpArtifactSourceOptions {
  /** Base URL of the control plane. */
  url: string;
  token: string | null;
  cacheDir: string;
  /** Gives up on a download that takes longer. Default 10 minutes. */
  timeoutMs?: number;
  /** Tries per download when the control plane cannot be reached or answers 5xx. Default 5 (over about 8 s). */
  retries?: number;
}

const digestRe = /^sha256:([0-9a-f]{64})$/;

export function createHttpArtifactSource(options: HttpArtifactSourceOptions): ArtifactSource {
  const base = options.url.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 10 * 60_000;
  const retries = Math.max(1, options.retries ?? 5);
  const verified = new Set<string>();
  // Tasks of one module often start together: they share one download.
  const inFlight = new Map<string, Promise<string>>();

  async function load(digest: string, hex: string): Promise<string> {
    const file = path.join(options.cacheDir, 'sha256', hex.slice(0, 2), `${hex}.tar.gz`);
    if (verified.has(digest)) return file;
    if (await exists(file)) {
      // Verified again once per process: a cache on disk may have been damaged since it was written.
      if ((await hashFile(file)) === digest) {
        verified.add(digest);
        return file;
      }
      await unlink(file).catch(() => undefined);
    }
    await mkdir(path.dirname(file), { recursive: true });
    const res = await download(digest);
    // Written to a temporary name and renamed only once the digest checks out, so the cache never holds a
    // partial or corrupt archive under its real name.
    const tmp = `${file}.${randomUUID()}.tmp`;
    const hash = createHash('sha256');
    const hasher = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), hasher, createWriteStream(tmp));
      const actual = `sha256:${hash.digest('hex')}`;
      if (actual !== digest) throw new Error(`module ${digest} downloaded from ${base} hashes to ${actual}; refusing it`);
      await rename(tmp, file);
    } catch (error) {
      await unlink(tmp).catch(() => undefined);
      throw error;
    }
    verified.add(digest);
    return file;
  }

  /** GET with a few retries: a control plane restarting (or a replica going away) should not fail the task. */
  async function download(digest: string): Promise<Response> {
    for (let attempt = 1; ; attempt++) {
      let res: Response | undefined;
      let problem = '';
      try {
        res = await fetch(`${base}/artifacts/${encodeURIComponent(digest)}`, {
          headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (error) {
        problem = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      }
      if (res) {
        if (res.ok && res.body) return res;
        const text = (await res.text().catch(() => '')).trim().slice(0, 200);
        const hint = res.status === 401 ? ' (set ATELIER_TOKEN to a valid token)' : '';
        problem = `HTTP ${res.status}${text ? ` ${text}` : ''}${hint}`;
        // A 4xx (bad token, unknown digest) will not change by asking again.
        if (res.status < 500) throw new Error(`downloading module ${digest} from ${base} failed: ${problem}`);
      }
      if (attempt >= retries) throw new Error(`cannot download module ${digest} from ${base} (${attempt} tries): ${problem}`);
      await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
    }
  }

  return {
    fetch(digest) {
      const m = digestRe.exec(digest);
      if (!m) return Promise.reject(new Error(`"${digest}" is not a module digest (expected sha256:<64 hex digits>)`));
      let pending = inFlight.get(digest);
      if (!pending) {
        pending = load(digest, m[1]!).finally(() => inFlight.delete(digest));
        inFlight.set(digest, pending);
      }
      return pending;
    },
  };
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
}
