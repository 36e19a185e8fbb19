// Module archives for a standalone executor host: downloaded from the control plane's /artifacts/<digest> with
// the bearer token, verified against their digest, and kept in a local cache so each is fetched once. Downloads
// retry with backoff (ATELIER_DOWNLOAD_RETRY_SECONDS, 30 s by default) so a replica restarting fails no task.
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArtifactSource } from '../../plugins/host';
import { hashFile } from '../artifacts/store';
import { DEFAULT_DOWNLOAD_RETRY_MS } from '../config/defaults';

export interface HttpArtifactSourceOptions {
  /** Base URL of the control plane. */
  url: string;
  token: string | null;
  cacheDir: string;
  /** Gives up on a download that takes longer. Default 10 minutes. */
  timeoutMs?: number;
  /**
   * How long a download keeps retrying when the control plane cannot be reached, drops the transfer or answers
   * 5xx (never on 4xx), with backoff doubling from 250 ms to 5 s. Default 30 s (`ATELIER_DOWNLOAD_RETRY_SECONDS`):
   * longer than a replica takes to restart.
   */
  retryForMs?: number;
  /** At most this many tries, whatever `retryForMs` allows. Default: no limit but `retryForMs`. */
  retries?: number;
  /** Told about each retry (default: nothing). */
  warn?: (message: string) => void;
}

const digestRe = /^sha256:([0-9a-f]{64})$/;
const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 5_000;

/** A failure asking again will not change (4xx, a digest that does not match). */
class FinalError extends Error {}

export function createHttpArtifactSource(options: HttpArtifactSourceOptions): ArtifactSource {
  const base = options.url.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 10 * 60_000;
  const retryForMs = options.retryForMs ?? DEFAULT_DOWNLOAD_RETRY_MS;
  const maxTries = Math.max(1, options.retries ?? Number.POSITIVE_INFINITY);
  const verified = new Set<string>();
  // Tasks of one module often start together: they share one download.
  const inFlight = new Map<string, Promise<string>>();

  async function load(digest: string, hex: string, token: string | null): Promise<string> {
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
    await withRetries(digest, () => transfer(digest, file, token));
    verified.add(digest);
    return file;
  }

  /**
   * Retries the whole transfer with backoff: a control plane restarting (or a replica going away, even mid-body)
   * should not fail the task. Gives up once the next wait would pass `retryForMs`.
   */
  async function withRetries(digest: string, once: () => Promise<void>): Promise<void> {
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        return await once();
      } catch (error) {
        if (error instanceof FinalError) throw new Error(error.message);
        const delay = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (attempt - 1));
        const problem = (error as Error).message;
        if (attempt >= maxTries || Date.now() - started + delay > retryForMs) {
          throw new Error(
            `cannot download module ${digest} from ${base} (${attempt} ${attempt === 1 ? 'try' : 'tries'} over ${Math.round((Date.now() - started) / 1000)} s): ${problem}` +
              '; check that the control plane is up (ATELIER_DOWNLOAD_RETRY_SECONDS sets how long to keep trying)',
          );
        }
        options.warn?.(`downloading module ${digest}: ${problem}; retrying in ${delay} ms`);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** One GET, written to a temporary name and renamed only once the digest checks out, so the cache never holds a
   * partial or corrupt archive under its real name. */
  async function transfer(digest: string, file: string, token: string | null): Promise<void> {
    let res: Response;
    try {
      res = await fetch(`${base}/artifacts/${encodeURIComponent(digest)}`, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw new Error((error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message);
    }
    if (!res.ok || !res.body) {
      const text = (await res.text().catch(() => '')).trim().slice(0, 200);
      const hint = res.status === 401 ? ' (set ATELIER_TOKEN to a valid token)' : '';
      const problem = `HTTP ${res.status}${text ? ` ${text}` : ''}${hint}`;
      // A 4xx (bad token, unknown digest) will not change by asking again.
      if (res.status < 500) throw new FinalError(`downloading module ${digest} from ${base} failed: ${problem}`);
      throw new Error(problem);
    }
    const tmp = `${file}.${randomUUID()}.tmp`;
    const hash = createHash('sha256');
    const hasher = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    });
    try {
      try {
        await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), hasher, createWriteStream(tmp));
      } catch (error) {
        throw new Error(`the transfer broke off: ${(error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message}`);
      }
      const actual = `sha256:${hash.digest('hex')}`;
      if (actual !== digest) throw new FinalError(`module ${digest} downloaded from ${base} hashes to ${actual}; refusing it`);
      await rename(tmp, file);
    } catch (error) {
      await unlink(tmp).catch(() => undefined);
      throw error;
    }
  }

  return {
    fetch(digest, as) {
      const m = digestRe.exec(digest);
      if (!m) return Promise.reject(new Error(`"${digest}" is not a module digest (expected sha256:<64 hex digits>)`));
      let pending = inFlight.get(digest);
      if (!pending) {
        pending = load(digest, m[1]!, as?.token ?? options.token).finally(() => inFlight.delete(digest));
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
